package natsclustertest

import "syscall"

// serverProcAttr makes a server die with the process that started it, so a crashed test or soak
// leaves no servers behind.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
