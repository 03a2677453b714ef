package postgres

import (
	"encoding/binary"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// OIDs of the element types of append_group_packed's array parameters (built-in
// types: fixed in every PostgreSQL).
const (
	oidBytea = 17
	oidInt8  = 20
	oidInt4  = 23
	oidUUID  = 2950
)

// groupEvents holds one append's events as the elements of
// append_group_packed's arrays, in PostgreSQL's binary array format (each
// element its length and bytes), encoded by the appending goroutine
// before it queues, so that the group's leader only concatenates them: the
// encoding stays off the path that holds up the next group. Consecutive
// events with the same name, schema, time and metadata share a kind.
type groupEvents struct {
	// The kinds' columns: names, schemas, times (s, ns), metadata.
	knames, kschemas, kts, ktn, kmds []byte
	kinds                            int
	nullMD                           bool    // a kind without metadata (NULL)
	kind                             []int32 // each event's kind, 0-based within the append
	datas, eids                      []byte
}

// encodeEvents stamps req's events (ids and times, as appendArgs does)
// and encodes them.
func (s *Store) encodeEvents(req runtime.AppendRequest) *groupEvents {
	n := len(req.Events)
	size := 0
	for _, e := range req.Events {
		size += len(e.Data)
	}
	ge := &groupEvents{
		kind:  make([]int32, n),
		datas: make([]byte, 0, 4*n+size),
		eids:  make([]byte, 0, 20*n),
	}
	stamp := storekit.NewStamp(req, s.opt.now)
	var (
		last          *runtime.EventData
		lastS, lastNs int64
		lastMD, md    []byte
	)
	for i := range req.Events {
		e := &req.Events[i]
		id, t := stamp.Event(i)
		sec, ns := t.Unix(), int64(t.Nanosecond())
		if len(e.Metadata) == 0 {
			md = nil
		} else {
			md = encodeMetadata(e.Metadata)
		}
		if last == nil || e.Name != last.Name || e.Schema != last.Schema || sec != lastS || ns != lastNs ||
			(md == nil) != (lastMD == nil) || string(md) != string(lastMD) {
			ge.knames = appendBytes(ge.knames, []byte(e.Name))
			ge.kschemas = appendInt8(ge.kschemas, int64(e.Schema))
			ge.kts = appendInt8(ge.kts, sec)
			ge.ktn = appendInt4(ge.ktn, int32(ns))
			if md == nil {
				ge.kmds = binary.BigEndian.AppendUint32(ge.kmds, 0xffffffff) // NULL
				ge.nullMD = true
			} else {
				ge.kmds = appendBytes(ge.kmds, md)
			}
			ge.kinds++
			last, lastS, lastNs, lastMD = e, sec, ns, md
		}
		ge.kind[i] = int32(ge.kinds - 1)
		ge.datas = appendBytes(ge.datas, e.Data) // nil data is stored empty
		ge.eids = binary.BigEndian.AppendUint32(ge.eids, 16)
		ge.eids = append(ge.eids, id[:]...)
	}
	return ge
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendInt4(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

// arrayHeader starts a one-dimensional array of n elements of type oid
// in PostgreSQL's binary format; its elements follow. An empty array has
// no dimension.
func arrayHeader(b []byte, oid uint32, n int, nulls bool) []byte {
	if n == 0 {
		b = binary.BigEndian.AppendUint32(b, 0) // ndim
		b = binary.BigEndian.AppendUint32(b, 0) // no NULLs
		return binary.BigEndian.AppendUint32(b, oid)
	}
	b = binary.BigEndian.AppendUint32(b, 1) // ndim
	flags := uint32(0)
	if nulls {
		flags = 1
	}
	b = binary.BigEndian.AppendUint32(b, flags)
	b = binary.BigEndian.AppendUint32(b, oid)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint32(b, 1) // lower bound
}

// groupParams are append_group_packed's parameters, in binary format, for
// the appends of reqs in that order.
func groupParams(reqs []*groupReq) [][]byte {
	events, kinds, nullMD := 0, 0, false
	var head, kn, ks, kt, ktn, kmd, datas, eids int
	for _, r := range reqs {
		g := r.events
		events += len(r.req.Events)
		kinds += g.kinds
		nullMD = nullMD || g.nullMD
		head += 8 + len(r.req.Stream.Type) + len(r.req.Stream.ID)
		kn, ks, kt, ktn, kmd = kn+len(g.knames), ks+len(g.kschemas), kt+len(g.kts), ktn+len(g.ktn), kmd+len(g.kmds)
		datas, eids = datas+len(g.datas), eids+len(g.eids)
	}
	const hdr = 20
	mk := func(oid uint32, n, size int, nulls bool) []byte {
		return arrayHeader(make([]byte, 0, hdr+size), oid, n, nulls)
	}
	var (
		types    = mk(oidBytea, len(reqs), head, false)
		ids      = mk(oidBytea, len(reqs), head, false)
		expected = mk(oidInt8, len(reqs), 12*len(reqs), false)
		counts   = mk(oidInt8, len(reqs), 12*len(reqs), false)
		knames   = mk(oidBytea, kinds, kn, false)
		kschemas = mk(oidInt8, kinds, ks, false)
		kts      = mk(oidInt8, kinds, kt, false)
		kns      = mk(oidInt4, kinds, ktn, false)
		kmds     = mk(oidBytea, kinds, kmd, nullMD)
		owner    = mk(oidInt4, events, 8*events, false)
		kind     = mk(oidInt4, events, 8*events, false)
		data     = mk(oidBytea, events, datas, false)
		eid      = mk(oidUUID, events, eids, false)
	)
	base := int32(1) // kinds are 1-based in the call
	for k, r := range reqs {
		g := r.events
		types = appendBytes(types, []byte(r.req.Stream.Type))
		ids = appendBytes(ids, []byte(r.req.Stream.ID))
		expected = appendInt8(expected, expectedArg(r.req.Expected))
		counts = appendInt8(counts, int64(len(r.req.Events)))
		knames = append(knames, g.knames...)
		kschemas = append(kschemas, g.kschemas...)
		kts = append(kts, g.kts...)
		kns = append(kns, g.ktn...)
		kmds = append(kmds, g.kmds...)
		for _, d := range g.kind {
			owner = appendInt4(owner, int32(k+1))
			kind = appendInt4(kind, base+d)
		}
		base += int32(g.kinds)
		data = append(data, g.datas...)
		eid = append(eid, g.eids...)
	}
	maxVersion := binary.BigEndian.AppendUint64(nil, uint64(runtime.MaxVersion))
	return [][]byte{types, ids, expected, counts, knames, kschemas, kts, kns, kmds, owner, kind, data, eid, maxVersion}
}

// loneParams are appendMove's (appendUpsert's) parameters, in binary
// format, for req alone: its stream, expected version and event count, its
// kinds' columns, each event's kind (1-based), the data, the ids and the
// version limit.
func loneParams(req runtime.AppendRequest, ev *groupEvents) [][]byte {
	const hdr = 20
	mk := func(oid uint32, n int, b []byte, nulls bool) []byte {
		return append(arrayHeader(make([]byte, 0, hdr+len(b)), oid, n, nulls), b...)
	}
	n := len(req.Events)
	kind := arrayHeader(make([]byte, 0, hdr+8*n), oidInt4, n, false)
	for _, d := range ev.kind {
		kind = appendInt4(kind, d+1)
	}
	be := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	return [][]byte{[]byte(req.Stream.Type), []byte(req.Stream.ID), be(expectedArg(req.Expected)), be(int64(n)),
		mk(oidBytea, ev.kinds, ev.knames, false), mk(oidInt8, ev.kinds, ev.kschemas, false), mk(oidInt8, ev.kinds, ev.kts, false),
		mk(oidInt4, ev.kinds, ev.ktn, false), mk(oidBytea, ev.kinds, ev.kmds, ev.nullMD),
		kind, mk(oidBytea, n, ev.datas, false), mk(oidUUID, n, ev.eids, false), be(int64(runtime.MaxVersion))}
}

// migrationPackedGroup (version 7) adds append_group_packed, append_group
// with lighter parameters: the events of a group come as four arrays
// (owner, kind, data, id), and each event's name, schema, time and
// metadata as an index (its kind) into a small table of the distinct
// tuples, which an append's events mostly share (one clock reading per
// append). The server decodes each array element through its type's
// receive function before the call starts; nine per-event arrays cost about
// a quarter of a 300-event group's round trip (docs/benchmarks-history.md).
// append_group stays for processes that opened the schema before.
const migrationPackedGroup = `
CREATE FUNCTION {{S}}.append_group_packed(
	p_types bytea[], p_ids bytea[], p_expected bigint[], p_counts bigint[],
	p_knames bytea[], p_kschemas bigint[], p_kts bigint[], p_ktn int[], p_kmds bytea[],
	p_owner int[], p_kind int[], p_datas bytea[], p_eids uuid[],
	p_max_version bigint,
	OUT statuses int[], OUT bases bigint[], OUT actuals bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
	k int;
	n bigint;
	e bigint;
	a bigint;
	total bigint := 0;
	start bigint := 0;
	b bigint;
	offs bigint[];
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	statuses := array_fill(0, ARRAY[cardinality(p_types)]);
	bases := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	actuals := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	offs := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	FOR k IN 1 .. cardinality(p_types) LOOP
		n := p_counts[k];
		e := p_expected[k];
		LOOP
			UPDATE {{S}}.streams SET version = version + n
			WHERE stream_type = p_types[k] AND stream_id = p_ids[k]
				AND (e = -1 OR (e = -2 AND version > 0) OR version = e)
				AND version + n <= p_max_version
			RETURNING version - n INTO a;
			EXIT WHEN FOUND;
			SELECT t.version INTO a FROM {{S}}.streams t WHERE t.stream_type = p_types[k] AND t.stream_id = p_ids[k];
			IF NOT FOUND THEN
				a := 0;
				IF e = -1 OR e = 0 THEN
					INSERT INTO {{S}}.streams (stream_type, stream_id, version) VALUES (p_types[k], p_ids[k], n)
					ON CONFLICT (stream_type, stream_id) DO NOTHING;
					EXIT WHEN FOUND;
					CONTINUE;
				END IF;
			END IF;
			IF NOT (e = -1 OR (e = -2 AND a > 0) OR e = a) THEN
				statuses[k] := 1;
				EXIT;
			END IF;
			IF a + n > p_max_version THEN
				statuses[k] := 3;
				EXIT;
			END IF;
		END LOOP;
		actuals[k] := a;
		IF statuses[k] = 0 THEN
			bases[k] := total;
			-- The append's events are x.i = start+1 .. start+n of the
			-- flattened arrays: offs[k] + x.i is their place in the group.
			offs[k] := total - start;
			total := total + n;
		END IF;
		start := start + n;
	END LOOP;
	IF total = 0 THEN
		RETURN;
	END IF;
	UPDATE {{S}}.log_head SET position = position + total WHERE id = 1 RETURNING position - total INTO b;
	INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT b + offs[x.k] + x.i, p_types[x.k], p_ids[x.k], actuals[x.k] + offs[x.k] + x.i - bases[x.k],
		p_knames[x.d], p_kschemas[x.d], p_kts[x.d], p_ktn[x.d], p_kmds[x.d], x.data, x.eid
	FROM unnest(p_owner, p_kind, p_datas, p_eids) WITH ORDINALITY AS x(k, d, data, eid, i)
	WHERE statuses[x.k] = 0;
	FOR k IN 1 .. cardinality(p_types) LOOP
		IF statuses[k] = 0 THEN
			bases[k] := b + bases[k];
		END IF;
	END LOOP;
END
$fn$;
`
