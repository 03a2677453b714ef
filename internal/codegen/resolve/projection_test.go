package resolve

import "testing"

func TestIsHandlerName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"OnDeposited", true},
		{"OnÉvénement", true},
		{"OnX", true},
		{"On", false},
		{"Online", false},
		{"onDeposited", false},
		{"Once", false},
		{"On_Deposited", false},
		{"HandleDeposited", false},
	}
	for _, tt := range tests {
		if got := isHandlerName(tt.name); got != tt.want {
			t.Errorf("isHandlerName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
