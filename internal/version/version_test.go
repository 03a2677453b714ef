package version

import (
	"runtime/debug"
	"testing"
)

func TestFromInfo(t *testing.T) {
	tests := []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"published", debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "v1.2.3"}}, "v1.2.3"},
		{"replaced", debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "../cqrsgen"}}}, "v0.0.0 => ../cqrsgen"},
		{"replaced by a directory (go tool)", debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "../cqrsgen", Version: "(devel)"}}}, "v0.0.0 => ../cqrsgen"},
		{"replaced by a version", debug.BuildInfo{Main: debug.Module{Path: ModulePath, Version: "v0.1.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v0.1.1"}}}, "v0.1.0 => example.com/fork v0.1.1"},
		{"devel with revision", debug.BuildInfo{
			Main:     debug.Module{Path: ModulePath, Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}},
		}, "(devel) abc123+dirty"},
		{"dependency", debug.BuildInfo{
			Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: "example.com/other", Version: "v9.0.0"}, {Path: ModulePath, Version: "v0.4.0"}},
		}, "v0.4.0"},
		{"absent", debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}}, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromInfo(&tt.info); got != tt.want {
				t.Errorf("fromInfo = %q, want %q", got, tt.want)
			}
		})
	}
}
