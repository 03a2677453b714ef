package audit

// Log is a second aggregate, in another package, whose event has the same
// Go name and wire name as bank's Opened.
//
//cqrs:aggregate name=audit.log
type Log struct{ N int }

//cqrs:event Log
type Opened struct{ By string }

func (l *Log) ApplyOpened(Opened) { l.N++ }
