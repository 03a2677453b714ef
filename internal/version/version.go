// Package version says which build of cqrsgen's module a binary is, for the
// tools' -version flag.
package version

import (
	"runtime/debug"
	"strings"
)

// ModulePath is the module whose version is reported.
const ModulePath = "github.com/cqrsgen/cqrsgen"

// String returns the version of ModulePath this binary was built from, as
// the go command recorded it: "v1.2.3" when installed from a published
// version, "v0.0.0 => ../cqrsgen" under a replace directive, "(devel)" when
// built inside the module's own tree (then followed by the VCS revision
// and "+dirty" when the build recorded them), and "unknown" without build
// information.
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return fromInfo(info)
}

func fromInfo(info *debug.BuildInfo) string {
	m := &info.Main
	if m.Path != ModulePath {
		// Built as a dependency of another main module (not go tool,
		// which makes this module the main one).
		m = nil
		for _, d := range info.Deps {
			if d.Path == ModulePath {
				m = d
				break
			}
		}
		if m == nil {
			return "unknown"
		}
	}
	v := m.Version
	if v == "" {
		v = "(devel)"
	}
	if m.Replace != nil {
		r := m.Replace.Path
		if m.Replace.Version != "" && m.Replace.Version != "(devel)" { // a directory has none
			r += " " + m.Replace.Version
		}
		v += " => " + r
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" && m == &info.Main && strings.HasPrefix(v, "(devel)") {
		v += " " + rev + dirty
	}
	return v
}
