package lock

import (
	"strconv"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// KindSaga is the entry of a saga's state: the runtime stores it with
// every reaction of an instance, so an instance in flight must still
// decode it after the package changes. Its stream is the instance streams'
// type and its wire name is the saga's name, at the state's version= (the
// older forms read by a //cqrs:upcast are KindUpcast entries of the same
// stream):
//
//	saga   cqrsgen.saga.bank.transfer bank.transfer@1 Transfer {From:string To:string Amount:int64}
const KindSaga = "saga"

// SagaStreamPrefix starts the stream type of a saga's instances
// (saga.StreamPrefix).
const SagaStreamPrefix = "cqrsgen.saga."

// sagaEntries returns the entries of the package's saga states and of the
// older forms their upcasters read.
func sagaEntries(pkg *model.Package) []*Entry {
	var out []*Entry
	for _, s := range pkg.Sagas {
		stream := SagaStreamPrefix + s.Name
		out = append(out, &Entry{Kind: KindSaga, Stream: stream, Name: s.Name, Version: s.Version,
			GoName: s.GoName, Shape: shapeOf(s.State), Pos: s.Pos})
		for _, u := range s.Upcasts {
			out = append(out, &Entry{Kind: KindUpcast, Stream: stream, Name: u.WireName, Version: u.Version,
				GoName: u.Struct.GoName, Shape: shapeOf(u.Struct), Pos: u.Struct.Pos})
		}
	}
	return out
}

func isSagaEntry(e *Entry) bool {
	return e.Kind == KindSaga || strings.HasPrefix(e.Stream, SagaStreamPrefix)
}

// checkSagaGone reports a locked saga state entry o that the package no
// longer has (cur has no entry of its key): the saga was renamed or
// removed, its version went down, or nothing reads that stored version
// any more. A vanished upcaster input of a vanished saga is reported once,
// with the saga.
func checkSagaGone(path string, o *Entry, cur []*Entry) []model.Error {
	at := model.Pos{File: path, Line: o.Line, Col: 1}
	saga := find(cur, func(e *Entry) bool { return e.Kind == KindSaga && e.Stream == o.Stream })
	if saga == nil {
		if o.Kind != KindSaga {
			return nil
		}
		if same := find(cur, func(e *Entry) bool { return e.Kind == KindSaga && e.GoName == o.GoName }); same != nil {
			return []model.Error{{Pos: same.Pos, Msg: "name of saga " + o.GoName + " changed from " + strconv.Quote(o.Name) + " to " + strconv.Quote(same.Name) +
				": its instances in flight would no longer be found; restore name=" + o.Name + " on the saga, " + adviceAccept}}
		}
		return []model.Error{{Pos: at, Msg: "saga " + o.GoName + " (" + strconv.Quote(o.Name) + ") is in " + FileName +
			" but no longer in the package: its instances in flight could no longer be driven or loaded; restore it, " + adviceAccept}}
	}
	if saga.Version < o.Version {
		return []model.Error{{Pos: saga.Pos, Msg: "saga " + saga.GoName + " is version " + strconv.FormatUint(uint64(saga.Version), 10) +
			", but " + FileName + " records " + o.ident() + ": versions never go down; restore version=" + strconv.FormatUint(uint64(o.Version), 10) + ", " + adviceAccept}}
	}
	what := "state of saga " + o.GoName
	if o.Kind == KindUpcast {
		what = "upcaster input " + o.GoName
	}
	return []model.Error{{Pos: at, Msg: o.ident() + " (" + what + ") is in " + FileName + " but nothing in the package reads " + o.ident() +
		" any more: instance states stored so could no longer be decoded; add a //cqrs:upcast from " + o.GoName + "'s locked shape to the saga type, " + adviceAccept}}
}
