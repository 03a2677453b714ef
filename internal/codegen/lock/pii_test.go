package lock

import "testing"

func TestPIIShapeRoundTrip(t *testing.T) {
	for _, line := range []string{
		`event  member joined@1 Joined {User:string Email:pii(User)string "e-mail":pii("user id")string}`,
		`upcast member joined@1 JoinedV1 {Tags:[]string Email:pii(User)string}`,
	} {
		es, errs := Parse("cqrs.lock", []byte(Header+"\n"+line+"\n"))
		if len(errs) > 0 || len(es) != 1 {
			t.Fatalf("Parse(%q): %v", line, errs)
		}
		if got := string(Render(es)); got[len(got)-len(line)-1:] != line+"\n" {
			t.Errorf("Render after Parse = %q, want it to end with %q", got, line)
		}
	}
	for _, bad := range []string{
		`event  member joined@1 Joined {Email:pii(User string}`,
		`event  member joined@1 Joined {Email:pii()string}`,
		`event  member joined@1 Joined {Email:pii(User)}`,
	} {
		if _, errs := Parse("cqrs.lock", []byte(Header+"\n"+bad+"\n")); len(errs) != 1 {
			t.Errorf("Parse(%q) = %v, want one error", bad, errs)
		}
	}
}
