package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// A channel (latest, stable, ...) of a service names one of its images. Every move
// is its own immutable object channels/<service>/<channel>/<seq>.json, claimed
// with create-if-not-exist (see appendSeq): of concurrent moves that pick the
// same seq one wins and the others take the next seq, so no move is ever lost,
// and the history is the objects in seq order. The current image is the one of
// the highest seq.

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// MoveOptions describe a channel move for its history.
type MoveOptions struct {
	By     string // who moved it
	Reason string // why
}

const seqDigits = 12

func channelPrefix(service, channel string) string {
	return "channels/" + service + "/" + channel + "/"
}

// parseSeq parses "<digits>.json".
func parseSeq(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil && n > 0
}

func checkChannel(service, channel string) error {
	if err := checkService(service); err != nil {
		return err
	}
	if !channelRE.MatchString(channel) {
		return fmt.Errorf("invalid channel name %q: use lowercase letters, digits and '-', starting with a letter, at most 40 characters (e.g. latest, stable)", channel)
	}
	return nil
}

func channelNotFound(service, channel string) error {
	return fmt.Errorf("channel %s/%s %w; move it with: imago image promote ID --channel %s", service, channel, ErrNotFound, channel)
}

// MoveChannel points channel of service at image imageID, which must be a usable
// image of that service, and returns the new history entry. Moving a channel to
// the image it already names adds no entry; the current entry is returned.
//
// Images built on the channel's previous image (Parent == entry.Previous) are
// marked outdated; entry.Outdated lists those this call marked. Should marking
// fail, the move stands and the error says so; moving again to the same image
// finishes the marking.
func (c *Catalog) MoveChannel(ctx context.Context, service, channel, imageID string, opts MoveOptions) (contract.ChannelEntry, error) {
	if err := checkChannel(service, channel); err != nil {
		return contract.ChannelEntry{}, fmt.Errorf("move channel: %w", err)
	}
	img, err := c.Get(ctx, imageID)
	if err != nil {
		return contract.ChannelEntry{}, fmt.Errorf("move %s/%s: %w", service, channel, err)
	}
	if img.Service != service {
		return contract.ChannelEntry{}, fmt.Errorf("move %s/%s: image %s belongs to service %s, not %s; promote an image of %s (list them with: imago image list --service %s)",
			service, channel, imageID, img.Service, service, service, service)
	}
	if err := img.Usable(); err != nil {
		return contract.ChannelEntry{}, fmt.Errorf("move %s/%s to %s: %w; promote a usable image (list them with: imago image list --service %s)", service, channel, imageID, err, service)
	}
	cur, err := c.head(ctx, service, channel)
	if err != nil {
		return contract.ChannelEntry{}, err
	}
	// e is the entry naming imageID: the current one when the channel names it
	// already (a move to it adds nothing), else the one this move appends, or a
	// concurrent move's to the same image.
	names := func(e contract.ChannelEntry) bool { return e.Seq > 0 && e.ImageID == imageID }
	e := cur
	if !names(cur) {
		_, err = c.appendSeq(ctx, channelPrefix(service, channel), cur.Seq, fmt.Sprintf("move %s/%s", service, channel), "moves",
			func(seq int64) any {
				e = contract.ChannelEntry{
					Service: service, Channel: channel, ImageID: imageID, Previous: cur.ImageID, Seq: seq,
					By: opts.By, Reason: opts.Reason, Time: time.Now().UTC(),
				}
				return e
			},
			func(seq int64) (bool, error) {
				// A concurrent move took seq: continue from its entry, which may
				// have moved the channel to imageID already.
				var err error
				if cur, err = c.entry(ctx, service, channel, seq); err != nil {
					return false, err
				}
				if names(cur) {
					e = cur
					return true, nil
				}
				return false, nil
			})
		if err != nil {
			return contract.ChannelEntry{}, err
		}
	}
	e.Outdated, err = c.markOutdated(ctx, e)
	return e, err
}

// entry reads move seq of a channel.
func (c *Catalog) entry(ctx context.Context, service, channel string, seq int64) (contract.ChannelEntry, error) {
	var e contract.ChannelEntry
	if err := c.readJSON(ctx, seqKey(channelPrefix(service, channel), seq), &e); err != nil {
		return contract.ChannelEntry{}, fmt.Errorf("read %s/%s move %d: %w", service, channel, seq, err)
	}
	e.Outdated = nil
	return e, nil
}

// head returns the current entry of a channel; a zero entry (Seq 0) when the
// channel was never moved.
func (c *Catalog) head(ctx context.Context, service, channel string) (contract.ChannelEntry, error) {
	seqs, err := c.seqsUnder(ctx, channelPrefix(service, channel))
	if err != nil || len(seqs) == 0 {
		return contract.ChannelEntry{}, err
	}
	return c.entry(ctx, service, channel, seqs[len(seqs)-1])
}

// Channel returns the current entry of channel of service.
func (c *Catalog) Channel(ctx context.Context, service, channel string) (contract.ChannelEntry, error) {
	if err := checkChannel(service, channel); err != nil {
		return contract.ChannelEntry{}, err
	}
	e, err := c.head(ctx, service, channel)
	if err != nil {
		return contract.ChannelEntry{}, err
	}
	if e.Seq == 0 {
		return contract.ChannelEntry{}, channelNotFound(service, channel)
	}
	return e, nil
}

// ChannelHistory returns every move of channel of service, oldest first.
func (c *Catalog) ChannelHistory(ctx context.Context, service, channel string) ([]contract.ChannelEntry, error) {
	if err := checkChannel(service, channel); err != nil {
		return nil, err
	}
	seqs, err := c.seqsUnder(ctx, channelPrefix(service, channel))
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, channelNotFound(service, channel)
	}
	out := make([]contract.ChannelEntry, len(seqs))
	err = parallel(ctx, len(seqs), func(ctx context.Context, i int) error {
		var err error
		out[i], err = c.entry(ctx, service, channel, seqs[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Channels returns the current entry of each channel of service, by channel name.
// A service without channels has none (and no error).
func (c *Catalog) Channels(ctx context.Context, service string) ([]contract.ChannelEntry, error) {
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	prefix := "channels/" + service + "/"
	keys, err := c.listKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	latest := map[string]int64{}
	for _, k := range keys {
		channel, name, ok := strings.Cut(strings.TrimPrefix(k, prefix), "/")
		if !ok || !channelRE.MatchString(channel) {
			continue
		}
		if n, ok := parseSeq(name); ok && n > latest[channel] {
			latest[channel] = n
		}
	}
	names := make([]string, 0, len(latest))
	for ch := range latest {
		names = append(names, ch)
	}
	sort.Strings(names)
	out := make([]contract.ChannelEntry, len(names))
	err = parallel(ctx, len(names), func(ctx context.Context, i int) error {
		var err error
		out[i], err = c.entry(ctx, service, names[i], latest[names[i]])
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// markOutdated marks the images built on e.Previous outdated, and returns those
// it marked (images marked by an earlier move keep that mark).
func (c *Catalog) markOutdated(ctx context.Context, e contract.ChannelEntry) ([]string, error) {
	if e.Previous == "" || e.Previous == e.ImageID {
		return nil, nil
	}
	kids, err := c.childIDs(ctx, e.Previous)
	if err != nil {
		return nil, c.markFailed(e, err)
	}
	var marked []string
	for _, id := range kids {
		child, err := c.record(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return marked, c.markFailed(e, err)
		}
		o := contract.Outdated{
			ImageID: id, Service: child.Service,
			Reason: fmt.Sprintf("base %s/%s moved from %s to %s", e.Service, e.Channel, e.Previous, e.ImageID),
			Since:  e.Time, Base: e.Service + "/" + e.Channel, OldBase: e.Previous, NewBase: e.ImageID,
		}
		switch err := c.create(ctx, outdatedKey(id), o); {
		case err == nil:
			marked = append(marked, id)
		case !isExists(err):
			return marked, c.markFailed(e, err)
		}
	}
	return marked, nil
}

func (c *Catalog) markFailed(e contract.ChannelEntry, err error) error {
	return fmt.Errorf("channel %s/%s moved to %s, but marking the images built on %s outdated failed: %w; move it to %s again to finish",
		e.Service, e.Channel, e.ImageID, e.Previous, err, e.ImageID)
}
