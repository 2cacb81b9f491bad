package vmimage

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// KernelArgs is the kernel command line every VM image boots with (the qemu
// provider's -append, the libvirt provider's <cmdline>): the console on the
// first serial port, the root disk the first virtio disk, imago's init.
// no_timer_check: on a loaded host a TCG guest fails the kernel's IO-APIC
// timer check ("IO-APIC + timer doesn't work!") and panics.
const KernelArgs = "console=ttyS0 root=/dev/vda rw init=/init panic=-1 quiet no_timer_check"

// UserNetdev is the QEMU -netdev of a guest's user-mode network with id,
// forwarding hostAddr:hostPort (an IPv4 address of the host) to the guest's
// GuestPort.
func UserNetdev(id, hostAddr string, hostPort int) string {
	return fmt.Sprintf("user,id=%s,hostfwd=tcp:%s:%d-:%d", id, hostAddr, hostPort, GuestPort)
}

// EnvData is the content of an instance's raw environment disk: env as shell
// assignments (single-quoted), the line #imago-end, zeros to a whole 4 KiB.
func EnvData(env map[string]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "%s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	b.WriteString("#imago-end\n")
	if pad := 4096 - b.Len()%4096; pad < 4096 {
		b.Write(make([]byte, pad))
	}
	return b.Bytes()
}
