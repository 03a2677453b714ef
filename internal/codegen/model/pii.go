package model

// PII is a field's `cqrs:"pii=Subject"` tag: the generated codec seals the
// field under the data key of the subject whose id the field Subject of
// the same struct holds (crypto-shredding).
type PII struct {
	// SubjectName is the field name the tag names, as written.
	SubjectName string
	// Subject is that field, once resolved (nil when it does not exist).
	Subject *Field
}

// HasPII reports whether any field of s is tagged pii.
func (s *Struct) HasPII() bool {
	for _, f := range s.Fields {
		if f.PII != nil {
			return true
		}
	}
	return false
}
