package h1client

import (
	"syscall"
	"unsafe"
)

// alive reports whether an idle connection can still be used: the server
// has neither closed it nor sent anything on it (an idle HTTP/1.1
// connection has nothing to read). It peeks without blocking, in one
// system call.
func (cn *conn) alive() bool {
	if cn.raw == nil {
		return true
	}
	if cn.peek == nil {
		cn.peek = cn.peekFD // one closure per connection, not per check
	}
	cn.peekOK = false
	err := cn.raw.Read(cn.peek)
	return cn.peekOK && err == nil
}

func (cn *conn) peekFD(fd uintptr) bool {
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&cn.peekBuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			cn.peekOK = true // open, and nothing to read
		}
		// Otherwise closed (0 bytes), reset, or sending unasked-for data.
		return true
	}
}
