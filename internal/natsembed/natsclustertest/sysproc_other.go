//go:build !linux

package natsclustertest

import "syscall"

func serverProcAttr() *syscall.SysProcAttr { return nil }
