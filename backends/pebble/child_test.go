package pebble

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
)

// startChild runs this test binary again as a child process with env
// added to its environment (NAME=value pairs: the child's part of a kill
// test starts when it sees its variable), its stderr passed through, and
// returns it with a scanner of its stdout, where the child reports what
// it acknowledged. The caller kills and waits for it.
func startChild(t *testing.T, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}
