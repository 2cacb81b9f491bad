// Package runas runs a bake's commands as another user than the worker's
// (IMAGO_BAKE_USER): the in-process builder's provision commands and the packer
// process, so what a bake runs cannot read the worker's files (its payload key,
// its catalog, its tokens) nor change its state.
//
// A nil *User runs commands as the worker itself. A User that is not the worker
// needs a worker running as root: each command then runs with the user's uid and
// gid, no supplementary groups, and (on Linux) in a PID namespace of its own, so
// a process it leaves behind, even one that left its process group, is killed
// when the command ends and cannot wait for the next bake's staging directory.
package runas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Env names the user bakes run as: a name or uid, optionally :group or :gid.
const Env = "IMAGO_BAKE_USER"

// User is who a bake's commands run as.
type User struct {
	Spec     string // as configured, e.g. nobody or 65534:65534
	UID, GID uint32
}

// Parse reads IMAGO_BAKE_USER: "nobody", "65534", "nobody:nogroup" or
// "65534:65534". Empty is nil: run as the worker. A uid without a group takes the
// user's primary group, so it must be in the user database; root is refused.
func Parse(s string) (*User, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	name, group, hasGroup := strings.Cut(s, ":")
	u := &User{Spec: s}
	var primary string
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		if pw, err := user.LookupId(name); err == nil {
			primary = pw.Gid
		}
	} else {
		pw, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", Env, s, err)
		}
		id, err := strconv.ParseUint(pw.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: user %s has uid %q", Env, s, name, pw.Uid)
		}
		u.UID, primary = uint32(id), pw.Gid
	}
	switch {
	case hasGroup:
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			primary = strconv.FormatUint(id, 10)
		} else if g, err := user.LookupGroup(group); err == nil {
			primary = g.Gid
		} else {
			return nil, fmt.Errorf("%s=%s: %w", Env, s, err)
		}
	case primary == "":
		return nil, fmt.Errorf("%s=%s: uid %d is not in the user database; name its group too, e.g. %d:%d", Env, s, u.UID, u.UID, u.UID)
	}
	gid, err := strconv.ParseUint(primary, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: group id %q is not a number", Env, s, primary)
	}
	u.GID = uint32(gid)
	if u.UID == 0 || u.GID == 0 {
		return nil, fmt.Errorf("%s=%s: bakes must not run as root (uid and gid 0); name an unprivileged user such as nobody", Env, s)
	}
	return u, nil
}

// String is the user as a message names it.
func (u *User) String() string {
	return fmt.Sprintf("%s=%s (uid %d, gid %d)", Env, u.Spec, u.UID, u.GID)
}

// Check reports whether this process can run commands as u: it must be root,
// or be u already. Its error says what to do.
func (u *User) Check() error { return u.check(os.Geteuid(), os.Getegid()) }

func (u *User) check(euid, egid int) error {
	if u == nil || euid == 0 || u.is(euid, egid) {
		return nil
	}
	return fmt.Errorf("%s: this worker runs as uid %d and cannot run bakes as another user; run imago-worker as root, or unset %s", u, euid, Env)
}

func (u *User) is(uid, gid int) bool { return int64(uid) == int64(u.UID) && int64(gid) == int64(u.GID) }

// switches reports whether commands run as u need to change user.
func (u *User) switches() bool { return u != nil && !u.is(os.Geteuid(), os.Getegid()) }

// Apply makes cmd run as u (its SysProcAttr keeps what was set, e.g. Setpgid);
// with a nil u, or u being this process's user, it changes nothing.
func (u *User) Apply(cmd *exec.Cmd) error {
	if !u.switches() {
		return nil
	}
	if err := u.Check(); err != nil {
		return err
	}
	return u.apply(cmd)
}

// StartError words a failure to start a command as u; err is exec's.
func (u *User) StartError(err error) error {
	if u.switches() && errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (as %s, in a PID namespace of its own: the worker needs root with CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN)", err, u)
	}
	return err
}

// Own gives dir and everything below it to u, so its commands can write there;
// symlinks themselves, never their targets. A nil u changes nothing.
func (u *User) Own(dir string) error {
	if !u.switches() {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.UID), int(u.GID))
	})
}
