package libvirt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/imago/imago/internal/vmimage"
)

// volPrefix starts the name of every volume and domain the driver makes.
const volPrefix = "imago-"

// openPool looks up the storage pool name, defining a directory pool at dir
// when it does not exist, and starts it when it is inactive.
func (h *host) openPool(name, dir string) error {
	pool, err := h.conn.StoragePoolLookupByName(name)
	if isNoSuch(err) {
		if dir == "" {
			return fmt.Errorf("storage pool %q does not exist: name an existing pool (pool=) or a directory for a new one (pooldir=)", name)
		}
		x, merr := (&libvirtxml.StoragePool{Type: "dir", Name: name,
			Target: &libvirtxml.StoragePoolTarget{Path: dir, Permissions: &libvirtxml.StoragePoolTargetPermissions{Mode: "0700"}}}).Marshal()
		if merr != nil {
			return merr
		}
		if pool, err = h.conn.StoragePoolDefineXML(x, 0); err != nil {
			return fmt.Errorf("define storage pool %q at %s: %w", name, dir, err)
		}
		if err := h.conn.StoragePoolBuild(pool, 0); err != nil {
			return fmt.Errorf("build storage pool %q: %w", name, err)
		}
	} else if err != nil {
		return fmt.Errorf("storage pool %q: %w", name, err)
	}
	active, err := h.conn.StoragePoolIsActive(pool)
	if err != nil {
		return err
	}
	if active == 0 {
		if err := h.conn.StoragePoolCreate(pool, 0); err != nil && !isNoSuch(err) {
			return fmt.Errorf("start storage pool %q: %w", name, err)
		}
	}
	desc, err := h.conn.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return err
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(desc); err != nil {
		return err
	}
	if px.Type != "dir" || px.Target == nil || px.Target.Path == "" {
		return fmt.Errorf("storage pool %q is a %s pool: the driver needs a directory pool", name, px.Type)
	}
	h.pool, h.poolDir = pool, px.Target.Path
	return nil
}

// isNoSuch reports whether err is libvirt's "no such pool/volume/domain".
func isNoSuch(err error) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	switch le.Code {
	case uint32(golibvirt.ErrNoStoragePool), uint32(golibvirt.ErrNoStorageVol), uint32(golibvirt.ErrNoDomain):
		return true
	}
	return false
}

// shortDigest is the first 16 hex digits of a sha256:… digest.
func shortDigest(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	if len(h) > 16 {
		h = h[:16]
	}
	return h
}

// ensureFile puts the local file at path into the pool as volume name (once
// per host) and returns the volume's path on the host. The name carries the
// file's digest (launch names it), and a volume counts as there only with its
// marker, the empty volume name+".done" created after its upload finished: a
// crash's half upload has none, and is deleted and uploaded again. The content
// is not downloaded to be checked: go-libvirt's StorageVolDownload deadlocked
// here (its stream callback blocked sending the reply while requestStream
// waited for the client's lock), hanging a worker that adopted a fleet.
func (h *host) ensureFile(name, path string) (string, error) {
	h.mu.Lock()
	p, ok := h.uploaded[name]
	h.mu.Unlock()
	if ok {
		return p, nil
	}
	done := name + ".done"
	vol, err := h.conn.StorageVolLookupByName(h.pool, name)
	complete := false
	switch {
	case err == nil:
		_, err := h.conn.StorageVolLookupByName(h.pool, done)
		switch {
		case err == nil:
			complete = true
		case !isNoSuch(err):
			return "", fmt.Errorf("volume %s: %w", done, err)
		default: // a half upload
			if err := h.conn.StorageVolDelete(vol, 0); err != nil && !isNoSuch(err) {
				return "", fmt.Errorf("volume %s: %w", name, err)
			}
		}
	case !isNoSuch(err):
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if !complete {
		if vol, err = h.upload(name, path, "0644"); err != nil {
			return "", err
		}
		if err := h.emptyVolume(done); err != nil {
			return "", err
		}
	}
	if p, err = h.conn.StorageVolGetPath(vol); err != nil {
		return "", err
	}
	h.mu.Lock()
	h.uploaded[name] = p
	h.mu.Unlock()
	return p, nil
}

// emptyVolume creates volume name with no content (a marker); one already
// there is kept.
func (h *host) emptyVolume(name string) error {
	x, err := (&libvirtxml.StorageVolume{Name: name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"},
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: "0600"}}}).Marshal()
	if err != nil {
		return err
	}
	if _, err := h.conn.StorageVolCreateXML(h.pool, x, 0); err != nil {
		if _, lerr := h.conn.StorageVolLookupByName(h.pool, name); lerr == nil {
			return nil
		}
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// upload creates volume name (raw, mode) with the content of the file at path.
func (h *host) upload(name, path, mode string) (golibvirt.StorageVol, error) {
	f, err := os.Open(path)
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	return h.uploadData(name, f, uint64(fi.Size()), mode)
}

// uploadData creates volume name (raw, mode) holding size bytes from r.
func (h *host) uploadData(name string, r io.Reader, size uint64, mode string) (golibvirt.StorageVol, error) {
	x, err := (&libvirtxml.StorageVolume{Name: name,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: size},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"},
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: mode}}}).Marshal()
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	vol, err := h.conn.StorageVolCreateXML(h.pool, x, 0)
	if err != nil {
		return vol, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := h.conn.StorageVolUpload(vol, r, 0, size, 0); err != nil {
		h.conn.StorageVolDelete(vol, 0)
		return vol, fmt.Errorf("upload volume %s: %w", name, err)
	}
	return vol, nil
}

// qcow2Size is the virtual size of the qcow2 file at path (its header's
// size field, bytes 24-31, big-endian).
func qcow2Size(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [32]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if !bytes.Equal(h[:4], []byte("QFI\xfb")) {
		return 0, fmt.Errorf("%s is no qcow2 file", path)
	}
	return binary.BigEndian.Uint64(h[24:32]), nil
}

// overlay creates volume name, a qcow2 overlay (0600) backed by the image's
// disk at base whose virtual size is size, and returns its path.
func (h *host) overlay(name, base string, size uint64) (string, error) {
	x, err := (&libvirtxml.StorageVolume{Name: name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: size},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"},
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: "0600"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: base, Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}}}).Marshal()
	if err != nil {
		return "", err
	}
	vol, err := h.conn.StorageVolCreateXML(h.pool, x, 0)
	if err != nil {
		return "", fmt.Errorf("create overlay %s: %w", name, err)
	}
	return h.conn.StorageVolGetPath(vol)
}

// envDisk creates volume name (0600: it may hold resolved secrets) with the
// instance's environment (vmimage.EnvData) and returns its path.
func (h *host) envDisk(name string, env map[string]string) (string, error) {
	data := vmimage.EnvData(env)
	vol, err := h.uploadData(name, bytes.NewReader(data), uint64(len(data)), "0600")
	if err != nil {
		return "", err
	}
	return h.conn.StorageVolGetPath(vol)
}

// deleteVolumes deletes the pool's volumes whose names start with prefix.
func (h *host) deleteVolumes(prefix string) error {
	if err := h.conn.StoragePoolRefresh(h.pool, 0); err != nil {
		return fmt.Errorf("refresh storage pool: %w", err)
	}
	vols, _, err := h.conn.StoragePoolListAllVolumes(h.pool, 1, 0)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vols {
		if strings.HasPrefix(v.Name, prefix) {
			if err := h.conn.StorageVolDelete(v, 0); err != nil && !isNoSuch(err) {
				errs = append(errs, fmt.Errorf("delete volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
