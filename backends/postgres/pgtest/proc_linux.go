package pgtest

import "syscall"

// sysProcAttr runs the server as cred and stops it (immediate shutdown) if
// the test binary dies without stopping it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
