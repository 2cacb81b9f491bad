package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// childLink records that Child was built on Parent (children/<parent>/<child>.json),
// so that an image's children are one listing away rather than a scan of every
// record. It is written when the child is published.
type childLink struct {
	Parent string `json:"parent"`
	Child  string `json:"child"`
}

func childKey(parent, child string) string { return "children/" + parent + "/" + child + ".json" }

// childIDs lists the images built directly on id, sorted.
func (c *Catalog) childIDs(ctx context.Context, id string) ([]string, error) {
	keys, err := c.listKeys(ctx, "children/"+id+"/")
	if err != nil {
		return nil, err
	}
	return idsOf(keys, "children/"+id+"/"), nil
}

// descendantIDs lists the images whose Parent chain leads to id, breadth first
// (every image after its parent).
func (c *Catalog) descendantIDs(ctx context.Context, id string) ([]string, error) {
	seen := map[string]bool{id: true}
	var out []string
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		kids, err := c.childIDs(ctx, queue[0])
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
				queue = append(queue, k)
			}
		}
	}
	return out, nil
}

// images reads images ids (as Get does), in the same order; missing ones are
// left out.
func (c *Catalog) images(ctx context.Context, ids []string) ([]contract.Image, error) {
	return readImages(ctx, ids, c.Get)
}

// readImages reads images ids with read, in parallel, in the same order; those
// read finds missing (ErrNotFound) are left out.
func readImages(ctx context.Context, ids []string, read func(ctx context.Context, id string) (contract.Image, error)) ([]contract.Image, error) {
	imgs := make([]contract.Image, len(ids))
	err := parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		var err error
		imgs[i], err = read(ctx, ids[i])
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := imgs[:0]
	for _, img := range imgs {
		if img.ID != "" {
			out = append(out, img)
		}
	}
	return out, nil
}

// Children returns the images built directly on image id (Parent == id), newest
// first.
func (c *Catalog) Children(ctx context.Context, id string) ([]contract.Image, error) {
	imgs, err := c.related(ctx, id, c.childIDs)
	if err != nil {
		return nil, err
	}
	sortNewestFirst(imgs)
	return imgs, nil
}

// Descendants returns the images whose Parent chain leads to image id: children,
// grandchildren and so on, breadth first (every image after its parent).
func (c *Catalog) Descendants(ctx context.Context, id string) ([]contract.Image, error) {
	return c.related(ctx, id, c.descendantIDs)
}

// related returns the images relatives lists for image id, which must exist, in
// that order.
func (c *Catalog) related(ctx context.Context, id string, relatives func(context.Context, string) ([]string, error)) ([]contract.Image, error) {
	if _, err := c.record(ctx, id); err != nil {
		return nil, err
	}
	ids, err := relatives(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.images(ctx, ids)
}

// RevokeOptions describe a revocation.
type RevokeOptions struct {
	Reason  string // why; required
	By      string // who
	Cascade bool   // revoke every descendant too
}

// Revoke marks image id as not to be used (revocations/<id>.json; the record
// stays as it was). With Cascade every descendant is revoked too, with the reason
// "parent <id> revoked: <reason>". It returns the images it revoked, id first;
// images revoked before keep their first revocation and are not listed, so
// revoking again is harmless.
func (c *Catalog) Revoke(ctx context.Context, id string, opts RevokeOptions) ([]string, error) {
	reason := strings.TrimSpace(opts.Reason)
	if reason == "" {
		return nil, fmt.Errorf("revoke image %s: a reason is required (--reason \"...\"), e.g. --reason \"CVE-2024-1234 in openssl\"", id)
	}
	if _, err := c.record(ctx, id); err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	targets := []string{id}
	if opts.Cascade {
		ds, err := c.descendantIDs(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("revoke image %s: find its descendants: %w", id, err)
		}
		targets = append(targets, ds...)
	}
	now := time.Now().UTC()
	var revoked []string
	for _, t := range targets {
		r := contract.Revocation{ImageID: t, Reason: reason, By: opts.By, Time: now}
		if t != id {
			r.Reason, r.CascadedFrom = fmt.Sprintf("parent %s revoked: %s", id, reason), id
		}
		switch err := c.create(ctx, revocationKey(t), r); {
		case err == nil:
			revoked = append(revoked, t)
		case !isExists(err):
			return revoked, fmt.Errorf("revoke image %s: %w (revoked so far: %v; run the revoke again to finish)", t, err, revoked)
		}
	}
	return revoked, nil
}

// revocations reads every revocation, by image ID.
func (c *Catalog) revocations(ctx context.Context) (map[string]*contract.Revocation, error) {
	return readMarks(ctx, c, "revocations/", c.revocation)
}

// outdatedMarks reads every outdated mark, by image ID.
func (c *Catalog) outdatedMarks(ctx context.Context) (map[string]*contract.Outdated, error) {
	return readMarks(ctx, c, "outdated/", c.outdated)
}

// readMarks reads every mark <prefix><image ID>.json, by image ID; read reads the
// mark of one image, nil when it has none.
func readMarks[M any](ctx context.Context, c *Catalog, prefix string, read func(context.Context, string) (*M, error)) (map[string]*M, error) {
	keys, err := c.listKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	ids := idsOf(keys, prefix)
	marks := make([]*M, len(ids))
	err = parallel(ctx, len(ids), func(ctx context.Context, i int) error {
		var err error
		marks[i], err = read(ctx, ids[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]*M, len(ids))
	for i, id := range ids {
		if marks[i] != nil {
			m[id] = marks[i]
		}
	}
	return m, nil
}

// Outdated returns the images of service (all services when empty) whose base
// channel moved on since they were built, newest first, with Outdated (and
// Revoked) filled.
func (c *Catalog) Outdated(ctx context.Context, service string) ([]contract.Image, error) {
	marks, err := c.outdatedMarks(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id, o := range marks {
		if service == "" || o.Service == service {
			ids = append(ids, id)
		}
	}
	imgs, err := readImages(ctx, ids, func(ctx context.Context, id string) (contract.Image, error) {
		img, err := c.record(ctx, id)
		if err != nil {
			return contract.Image{}, err
		}
		if img.Revoked, err = c.revocation(ctx, img.ID); err != nil {
			return contract.Image{}, err
		}
		img.Outdated = marks[img.ID]
		return img, nil
	})
	if err != nil {
		return nil, err
	}
	sortNewestFirst(imgs)
	return imgs, nil
}
