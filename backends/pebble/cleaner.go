package pebble

import pebbledb "github.com/cockroachdb/pebble/v2"

// walCleaner is the store's Pebble Cleaner: it deletes obsolete files, as
// Pebble's default does, and also stops Pebble from recycling write-ahead
// log files. A recycled log is kept after its memtable is flushed, to be
// reused for a later log, and is overwritten from its start without being
// truncated: until then it holds every byte written to it, and afterwards
// its tail still can. A hard delete (and ForgetSubject's snapshots) must
// leave no copy of the removed data in the directory, so every obsolete
// log is deleted instead (see docs/storage.md, "Deletes").
//
// Pebble recycles logs unless its Cleaner implements the unexported
// interface base.NeedsFileContents (for cleaners that archive files);
// the only way to implement it from outside is to embed a cleaner that
// does, ArchiveCleaner, one level deeper than DeleteCleaner, whose Clean
// and String therefore win. TestHardDeleteReclaimsSpace fails if a Pebble
// upgrade changes that (it finds the deleted bytes in a kept log).
type walCleaner struct {
	pebbledb.DeleteCleaner
	noRecycle
}

// noRecycle carries ArchiveCleaner's marker method, nothing else of it
// being reachable from walCleaner.
type noRecycle struct{ pebbledb.ArchiveCleaner }

func (walCleaner) String() string { return "delete, no log recycling" }
