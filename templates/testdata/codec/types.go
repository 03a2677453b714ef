// Package codec is the input of the codec tests: structs covering every
// field kind the generated codecs support. codec_gen.go is generated from it
// by templates.Codecs (go test ./templates -update rewrites it), and
// codec_test.go round-trips, cross-checks and fuzzes it.
package codec

import "time"

// Cents is a named integer of this package.
type Cents int64

// Tags is a named slice.
type Tags []string

// Blob is a named []byte.
type Blob []byte

// ID is a named string, used as a map key.
type ID string

// Level is a named small integer, used as a map key.
type Level uint8

// Counts is a named map.
type Counts map[string]int

// Grid is a named array.
type Grid [2][3]int16

// Address is a nested struct.
type Address struct {
	Street string
	City   string `msgpack:"city"`
	Zip    *string
}

// Node is recursive through a pointer and a slice.
type Node struct {
	Name     string
	Next     *Node
	Children []Node
}

// All has a field of every supported kind.
type All struct {
	Bool    bool
	Int     int
	Int8    int8
	Int16   int16
	Int32   int32
	Int64   int64
	Uint    uint
	Uint8   uint8
	Uint16  uint16
	Uint32  uint32
	Uint64  uint64
	Float32 float32
	Float64 float64
	String  string
	Bytes   []byte
	Time    time.Time
	Rune    rune
	Byte    byte

	Duration time.Duration
	Cents    Cents
	Tags     Tags
	Blob     Blob
	Counts   Counts
	Grid     Grid

	PInt    *int
	PString *string
	PPInt   **int
	PTime   *time.Time
	PAddr   *Address

	Ints       []int
	Strings    []string
	Times      []time.Time
	Addrs      []Address
	PAddrs     []*Address
	Matrix     [][]float64
	ByteSlices [][]byte

	Array   [3]int32
	Hash    [4]byte
	AddrArr [2]Address
	PtrArr  [2]*int8

	ByString   map[string]string
	ByInt      map[int]string
	ByInt8     map[int8]bool
	ByUint64   map[uint64][]string
	ByID       map[ID]Address
	ByLevel    map[Level]*Address
	Nested     map[string]map[int64][]byte
	TimesByKey map[string]time.Time

	Addr    Address
	Tree    Node
	Renamed string   `msgpack:"renamed_key"`
	Skipped chan int `msgpack:"-"`
	hidden  int32
}

// Hidden returns the unexported field, for tests in other files.
func (a *All) Hidden() int32 { return a.hidden }

// SetHidden sets the unexported field.
func (a *All) SetHidden(v int32) { a.hidden = v }

// Deposited is a typical event: a few strings, an int64, a time and a
// small map.
type Deposited struct {
	Account  string
	Amount   int64
	Currency string
	At       time.Time
	Ref      string
	Meta     map[string]string
}

// Empty has no fields.
type Empty struct{}
