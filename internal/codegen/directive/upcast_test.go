package directive

import "testing"

// TestUpcastFrom: from= splits at the last @, so wire names may contain @;
// without from= nothing is set (package build infers it).
func TestUpcastFrom(t *testing.T) {
	tests := []struct {
		src, from string
		version   uint32
	}{
		{"package p\n//cqrs:upcast\nfunc f() {}\n", "", 0},
		{"package p\n//cqrs:upcast from=bank.account.deposited@1\nfunc f() {}\n", "bank.account.deposited", 1},
		{"package p\n//cqrs:upcast from=a@b@4294967295\nfunc f() {}\n", "a@b", 4294967295},
	}
	for _, tt := range tests {
		dirs, errs := parse(t, tt.src)
		if len(errs) != 0 || len(dirs) != 1 {
			t.Fatalf("%q: %v %v", tt.src, dirs, errs)
		}
		d := dirs[0]
		if d.Kind != Upcast || d.Type != "f" || d.From != tt.from || d.FromVersion != tt.version {
			t.Errorf("%q: got %+v, want upcast f from %q@%d", tt.src, d, tt.from, tt.version)
		}
		if d.TypePos.Line != 3 || d.TypePos.Col != 6 {
			t.Errorf("%q: func position %v, want line 3 col 6", tt.src, d.TypePos)
		}
	}
}
