package templates

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"
)

// commentWidth is the column generated comments are wrapped at, counting
// the "// " and a tab as four columns of indentation.
const commentWidth = 100

// docf adds a comment wrapped at commentWidth to g (a file, or a block
// indented indent tabs). A blank line in the text starts a new paragraph,
// kept as an empty comment line; a line starting with a tab is kept as is
// (a code sample).
func docf(g *jen.Group, indent int, format string, args ...any) {
	g.Comment(wrap(fmt.Sprintf(format, args...), commentWidth-4*indent))
}

// wrap formats text as "// " lines no wider than width. The result starts
// with "//", so jennifer renders it as it is.
func wrap(text string, width int) string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		if len(out) > 0 {
			out = append(out, "//")
		}
		var line string
		flush := func() {
			if line != "" {
				out = append(out, "// "+line)
				line = ""
			}
		}
		for _, l := range strings.Split(para, "\n") {
			if strings.HasPrefix(l, "\t") {
				flush()
				out = append(out, "//"+l)
				continue
			}
			for _, w := range strings.Fields(l) {
				switch {
				case line == "":
					line = w
				case len("// ")+len(line)+1+len(w) > width:
					flush()
					line = w
				default:
					line += " " + w
				}
			}
		}
		flush()
	}
	return strings.Join(out, "\n")
}

// oneLine renders a function body on one line, as gofmt keeps a short
// body a person writes so: { return 0 }.
func oneLine(stmt jen.Code) *jen.Statement {
	return jen.Custom(jen.Options{Open: "{ ", Close: " }"}, stmt)
}
