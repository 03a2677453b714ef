package lock

import "github.com/cqrsgen/cqrsgen/internal/codegen/model"

// A field tagged pii is recorded as pii(<subject key>)<type>, so that the
// tag is part of the stored shape: adding, removing or retargeting it
// changes the field's type in the lock, which Check refuses without a new
// schema version like any retyping. (Old events decode either way; what
// changes is whether forgetting a subject can erase them: events stored
// before a tag was added hold the plaintext, and a version bump with an
// upcaster makes that a decision instead of an accident.)

// piiShape wraps t, the shape of field f, when f is tagged pii.
func piiShape(f *model.Field, t *Shape) *Shape {
	if f.PII == nil || f.PII.Subject == nil {
		return t
	}
	return &Shape{Kind: "pii", Subject: f.PII.Subject.Key, Elem: t}
}

// pii parses pii(<key>)<type>.
func (p *lineParser) pii(depth int) (*Shape, error) {
	p.off += len("pii(")
	k, err := p.key()
	if err != nil {
		return nil, err
	}
	if p.off >= len(p.s) || p.s[p.off] != ')' {
		return nil, p.errorf("want ) after the pii subject %q", k)
	}
	p.off++
	e, err := p.shape(depth + 1)
	return &Shape{Kind: "pii", Subject: k, Elem: e}, err
}
