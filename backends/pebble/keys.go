package pebble

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// The data keys of crypto-shredding (runtime.KeyStore) are not kept in the
// database: a key written to Pebble stays in its write-ahead log until its
// memtable is flushed and in sstables until a compaction drops it (and in
// recycled log files until a hard delete purges them, purgeLogs), so
// destroying one would take a flush, a purge and a compaction of its key
// at each forget. Each subject has
// a small file of its own instead, in the directory keys/ of the store:
// written whole to a temporary file, synced and renamed into place, and
// removed (then the directory synced) when the subject is forgotten. After
// ForgetSubject returns, no file of the store's directory holds the key.
// (What the file system does with freed blocks is below any file: use an
// encrypted file system, or wipe the device, if that matters.)

// keysDir is the directory of the key files, inside the store's.
const keysDir = "keys"

// keyFileMagic starts every key file: tag and format version.
const keyFileMagic = "cqK\x01"

// keyFiles guards the key files and caches what they hold (the store's
// directory is locked to one process, so the cache cannot go stale).
type keyFiles struct {
	mu    sync.Mutex
	made  bool                // keys/ exists
	cache map[string]*keyFile // by subject; never modified once cached
}

var _ runtime.KeyStore = (*Store)(nil)

// keyFile is a parsed key file.
type keyFile struct {
	subject string
	key     runtime.DataKey
	streams []runtime.StreamID
}

func (s *Store) keyPath(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return s.opts.fs.PathJoin(s.dir, keysDir, hex.EncodeToString(sum[:]))
}

func (f *keyFile) encode() []byte {
	b := append([]byte(keyFileMagic), f.key.ID[:]...)
	b = append(b, f.key.Key[:]...)
	b = binary.AppendUvarint(b, uint64(len(f.subject)))
	b = append(b, f.subject...)
	b = binary.AppendUvarint(b, uint64(len(f.streams)))
	for _, st := range f.streams {
		b = appendStreamKey(b, st)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeKeyFile(data []byte) (*keyFile, error) {
	if len(data) < len(keyFileMagic)+8+runtime.DataKeySize+4 || !bytes.HasPrefix(data, []byte(keyFileMagic)) {
		return nil, errTruncated
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errChecksum
	}
	f := &keyFile{}
	b := body[len(keyFileMagic):]
	copy(f.key.ID[:], b)
	copy(f.key.Key[:], b[8:])
	c := cursor{b: b[8+runtime.DataKeySize:]}
	f.subject = string(c.bytes())
	n := c.uvarint()
	for i := uint64(0); i < n && !c.bad; i++ {
		typ := c.bytes()
		id := c.bytes()
		f.streams = append(f.streams, runtime.StreamID{Type: string(typ), ID: string(id)})
	}
	if c.bad || c.off != len(c.b) {
		return nil, errTruncated
	}
	return f, nil
}

// readKeyFile returns subject's key file, or nil when it has none. The
// result is shared with the cache: do not modify it.
func (s *Store) readKeyFile(subject string) (*keyFile, error) {
	if f, ok := s.keyFiles.cache[subject]; ok {
		return f, nil
	}
	f, err := s.loadKeyFile(subject)
	if err == nil && f != nil {
		s.cacheKey(f)
	}
	return f, err
}

// loadKeyFile reads subject's key file from disk.
func (s *Store) loadKeyFile(subject string) (*keyFile, error) {
	path := s.keyPath(subject)
	fh, err := s.opts.fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(fh)
	_ = fh.Close()
	if err != nil {
		return nil, err
	}
	f, err := decodeKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s: %v", runtime.ErrCorrupt, path, err)
	}
	if f.subject != subject {
		return nil, fmt.Errorf("%w: key file %s belongs to another subject", runtime.ErrCorrupt, path)
	}
	return f, nil
}

// writeKeyFile replaces subject's key file with f, durably.
func (s *Store) writeKeyFile(f *keyFile) error {
	fs := s.opts.fs
	dir := fs.PathJoin(s.dir, keysDir)
	if !s.keyFiles.made {
		if err := fs.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := syncDir(fs, s.dir); err != nil {
			return err
		}
		s.keyFiles.made = true
	}
	path := s.keyPath(f.subject)
	tmp := path + ".tmp"
	fh, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := fh.Write(f.encode()); err != nil {
		_ = fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		_ = fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(fs, dir)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// keysOp runs op on the key files under the store's guards.
func (s *Store) keysOp(ctx context.Context, what, subject string, op func() error) error {
	if err := s.enter(ctx, what); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := runtime.ValidateKey("subject", subject); err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", what, err)
	}
	s.keyFiles.mu.Lock()
	defer s.keyFiles.mu.Unlock()
	if err := op(); err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", what, err)
	}
	return nil
}

// SubjectKey returns subject's data key, storing fresh as it first when
// the subject has none, and records stream for it (runtime.KeyStore). A
// new key or stream costs a file write, two syncs and a rename.
func (s *Store) SubjectKey(ctx context.Context, subject string, stream runtime.StreamID, fresh runtime.DataKey) (runtime.DataKey, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.DataKey{}, err
	}
	var key runtime.DataKey
	err := s.keysOp(ctx, "subject key", subject, func() error {
		f, err := s.readKeyFile(subject)
		if err != nil {
			return err
		}
		if f == nil {
			f = &keyFile{subject: subject, key: fresh}
		} else if slices.Contains(f.streams, stream) {
			key = f.key
			return nil
		}
		next := &keyFile{subject: subject, key: f.key, streams: append(slices.Clone(f.streams), stream)}
		slices.SortFunc(next.streams, compareStreams)
		if err := s.writeKeyFile(next); err != nil {
			return err
		}
		key = next.key
		s.cacheKey(next)
		return nil
	})
	return key, err
}

func compareStreams(a, b runtime.StreamID) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
}

func (s *Store) cacheKey(f *keyFile) {
	if s.keyFiles.cache == nil {
		s.keyFiles.cache = map[string]*keyFile{}
	}
	s.keyFiles.cache[f.subject] = f
}

// LoadSubjectKey returns subject's data key or runtime.ErrNotFound.
func (s *Store) LoadSubjectKey(ctx context.Context, subject string) (runtime.DataKey, error) {
	var key runtime.DataKey
	err := s.keysOp(ctx, "load subject key", subject, func() error {
		f, err := s.readKeyFile(subject)
		switch {
		case err != nil:
			return err
		case f == nil:
			return runtime.ErrNotFound
		}
		key = f.key
		return nil
	})
	return key, err
}

// SubjectStreams returns the streams recorded for subject's key.
func (s *Store) SubjectStreams(ctx context.Context, subject string) (streams []runtime.StreamID, found bool, err error) {
	err = s.keysOp(ctx, "subject streams", subject, func() error {
		f, err := s.readKeyFile(subject)
		if err != nil || f == nil {
			return err
		}
		streams, err = s.liveStreams(f.streams)
		found = err == nil
		return err
	})
	return streams, found, err
}

// liveStreams returns the streams that are not hard-deleted: a
// hard-deleted stream holds no sealed data any more (runtime.KeyStore).
// The caller holds mu.
func (s *Store) liveStreams(streams []runtime.StreamID) ([]runtime.StreamID, error) {
	out := streams[:0:0]
	for _, st := range streams {
		t, err := s.loadTombstone(appendStreamKey(nil, st), st)
		if err != nil {
			return nil, err
		}
		if t == nil || t.Mode != runtime.HardDelete {
			out = append(out, st)
		}
	}
	return out, nil
}

// ForgetSubject removes subject's key file and syncs the directory: when
// it returns, no file of the store holds the key.
func (s *Store) ForgetSubject(ctx context.Context, subject string) (streams []runtime.StreamID, found bool, err error) {
	err = s.keysOp(ctx, "forget subject", subject, func() error {
		f, err := s.readKeyFile(subject)
		if err != nil || f == nil {
			return err
		}
		delete(s.keyFiles.cache, subject)
		if err := s.opts.fs.Remove(s.keyPath(subject)); err != nil {
			return err
		}
		if err := syncDir(s.opts.fs, s.opts.fs.PathJoin(s.dir, keysDir)); err != nil {
			return err
		}
		found = true
		streams, err = s.liveStreams(f.streams)
		return err
	})
	return streams, found, err
}
