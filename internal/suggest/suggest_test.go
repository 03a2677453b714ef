package suggest

import "testing"

func TestClosest(t *testing.T) {
	kinds := []string{"aggregate", "event", "command", "upcast"}
	tests := []struct{ word, want string }{
		{"agregate", "aggregate"},
		{"Aggregate", "aggregate"},
		{"evnt", "event"}, // one edit, short word
		{"evt", ""},       // two edits on a short word: too far
		{"comand", "command"},
		{"upcsat", "upcast"}, // a swap is two edits
		{"frobnicate", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, kinds); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"snapshots", "snapshot", 1}} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
