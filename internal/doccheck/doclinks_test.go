package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/cqrsgen/cqrsgen/internal/codegen/testmod"
)

// TestDocLinks checks that every Markdown link of README.md and docs/*.md
// to a local file resolves, and that every anchor (#section) names a
// heading of the page it points to. Links with a scheme (https:, mailto:)
// are not fetched.
func TestDocLinks(t *testing.T) {
	root := testmod.Root(t)
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	checked := 0
	for _, doc := range docs {
		problems, n, err := checkDocLinks(root, doc)
		if err != nil {
			t.Fatal(err)
		}
		checked += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	if checked == 0 {
		t.Fatal("no local links found in README.md and docs/: the link extractor is broken")
	}
}

// TestCheckDocLinks runs the checker on a small tree with good and broken
// links, so that TestDocLinks passing means something.
func TestCheckDocLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/guide.md", "# Guide\n\n## The `Load` call\n\n## Errors & retries\n\n## Errors & retries\n")
	write("examples/bank/main.go", "package main\n")
	write("README.md", strings.Join([]string{
		"# Title",
		"[ok](docs/guide.md) [ok anchor](docs/guide.md#the-load-call) [ok dup](docs/guide.md#errors--retries-1)",
		"[ok dir](examples/bank) [ok file](examples/bank/main.go) [self](#title) [web](https://example.com/x.md)",
		"[mail](mailto:a@b.c) ![image](docs/missing.png) [titled](docs/guide.md \"The guide\")",
		"[missing](docs/storage.md) [bad anchor](docs/guide.md#nothing) [bad self](#nowhere)",
		"`[in code](docs/nope.md)`",
		"```",
		"[in a fence](docs/nope.md)",
		"```",
		"[ref]: docs/also-missing.md",
		"[escapes](../outside.md)",
	}, "\n"))
	problems, n, err := checkDocLinks(dir, filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md:4: link docs/missing.png: no such file",
		"README.md:5: link docs/storage.md: no such file",
		"README.md:5: link docs/guide.md#nothing: docs/guide.md has no heading with anchor #nothing",
		"README.md:5: link #nowhere: README.md has no heading with anchor #nowhere",
		"README.md:10: link docs/also-missing.md: no such file",
		"README.md:11: link ../outside.md: outside the repository",
	}
	if !reflect.DeepEqual(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if n != 13 {
		t.Errorf("checked %d local links, want 13", n)
	}
}

func TestAnchor(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Quick start", "quick-start"},
		{"The `Load` call", "the-load-call"},
		{"Errors & retries", "errors--retries"},
		{"Generated API for an aggregate `Account` (pinned)", "generated-api-for-an-aggregate-account-pinned"},
		{"Unknown, unsupported and misplaced directives", "unknown-unsupported-and-misplaced-directives"},
		{"A [linked](x.md) heading", "a-linked-heading"},
		{"snake_case and Ünïcode", "snake_case-and-ünïcode"},
		{"Wave 2: rules", "wave-2-rules"},
	} {
		if got := anchor(c.heading); got != c.want {
			t.Errorf("anchor(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

// docLink is a link found in a Markdown document.
type docLink struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	heading    = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	hasScheme  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// scanMarkdown returns the links of a document and the anchors of its
// headings (and of explicit <a name|id="…"> tags), skipping fenced code
// blocks and code spans.
func scanMarkdown(text []byte) (links []docLink, anchors map[string]bool) {
	anchors = map[string]bool{}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	fence := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			for len(fence) < len(trimmed) && trimmed[len(fence)] == fence[0] {
				fence += fence[:1]
			}
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			a := anchor(m[1])
			if k := seen[a]; k > 0 {
				anchors[fmt.Sprintf("%s-%d", a, k)] = true
			} else {
				anchors[a] = true
			}
			seen[a]++
		}
		plain := codeSpan.ReplaceAllString(line, "code")
		for _, m := range inlineLink.FindAllStringSubmatch(plain, -1) {
			links = append(links, docLink{line: n, target: m[1]})
		}
		if m := refDef.FindStringSubmatch(plain); m != nil {
			links = append(links, docLink{line: n, target: m[1]})
		}
	}
	return links, anchors
}

// anchor returns the anchor GitHub gives a heading: inline links reduced to
// their text, lower case, punctuation other than '-' and '_' dropped,
// spaces turned into '-'.
func anchor(h string) string {
	h = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkDocLinks checks the local links of the Markdown file doc inside the
// repository at root. It returns one message per broken link and the
// number of local links checked.
func checkDocLinks(root, doc string) (problems []string, checked int, err error) {
	text, err := os.ReadFile(doc)
	if err != nil {
		return nil, 0, err
	}
	rel, err := filepath.Rel(root, doc)
	if err != nil {
		return nil, 0, err
	}
	rel = filepath.ToSlash(rel)
	links, selfAnchors := scanMarkdown(text)
	anchorsOf := map[string]map[string]bool{rel: selfAnchors}
	for _, l := range links {
		if l.target == "" || hasScheme.MatchString(l.target) {
			continue
		}
		checked++
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s:%d: link %s: ", rel, l.line, l.target)+fmt.Sprintf(format, args...))
		}
		pathPart, frag, _ := strings.Cut(l.target, "#")
		target := rel
		if pathPart != "" {
			target = filepath.ToSlash(filepath.Join(filepath.Dir(rel), pathPart))
			if target == ".." || strings.HasPrefix(target, "../") {
				bad("outside the repository")
				continue
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				bad("no such file")
				continue
			}
		}
		if frag == "" {
			continue
		}
		if !strings.HasSuffix(target, ".md") {
			bad("an anchor into %s, which is not Markdown", target)
			continue
		}
		anchors, ok := anchorsOf[target]
		if !ok {
			data, err := os.ReadFile(filepath.Join(root, target))
			if err != nil {
				return nil, 0, err
			}
			_, anchors = scanMarkdown(data)
			anchorsOf[target] = anchors
		}
		if !anchors[frag] {
			bad("%s has no heading with anchor #%s", target, frag)
		}
	}
	return problems, checked, nil
}
