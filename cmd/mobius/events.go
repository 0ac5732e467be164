package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// errEnough ends a follow that has printed --limit events.
var errEnough = errors.New("enough events")

func (c *cli) eventsCommand() *cobra.Command {
	var after string
	var limit int
	var follow bool
	cmd := &cobra.Command{
		Use:   "events [--after ID] [--limit N] [--follow]",
		Short: "Show the project's change events, or follow them as they happen",
		Long: `Show the project's change feed, oldest first: every create, rotation, staging and
promote, rename, label change, version state change, delete, restore and purge,
API key creation and revocation, and the expiry and rotation reminders. An
event never holds a value. Events are kept 30 days.

--after ID starts after that event (the last one a previous run showed).
Without --follow it prints the events ready now (at most --limit) and, when
more are ready, says how to continue. With --follow it waits for new events
and prints each as it comes, -o json one JSON object per line, until Ctrl-C
(or --limit events), and then says on stderr how to resume where it stopped.`,
		Example: `  mobius events
  mobius events --after evt_01JNQ7X3Y5Z7A9B1C3D5E7F9G1 --limit 50
  mobius events --follow -o json | jq -c 'select(.type == "secret.rotated")'`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if after != "" && !secrets.IsEventID(after) {
				return usagef("invalid --after %q: want an event ID (evt_ and 26 characters) that an earlier run printed", secrets.Shorten(after, 40))
			}
			if cmd.Flags().Changed("after") && after == "" {
				return usagef("--after must not be empty")
			}
			if limit < 0 {
				return usagef("--limit must be 1 or more (0 for every ready event)")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if follow {
				return c.followEvents(cl, after, limit)
			}
			return c.listEvents(cl, after, limit)
		}),
	}
	cmd.Flags().StringVar(&after, "after", "", "start after this event ID")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many events (0: every ready one; with --follow, stop after this many)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep waiting for new events and print each as it comes, until Ctrl-C")
	return cmd
}

// listEvents prints the events ready after after, at most limit (0: all).
func (c *cli) listEvents(cl *client.Client, after string, limit int) error {
	var events []*client.Event
	var raws []json.RawMessage
	cursor, more := after, false
	for range maxPages {
		size := 0
		if limit > 0 {
			size = min(limit-len(events), secrets.MaxPageSize)
		}
		page, err := cl.ListEvents(c.ctx, "", cursor, size, 0)
		if err != nil {
			return err
		}
		raws = append(raws, page.Raw)
		events = append(events, page.Events...)
		if page.NextAfter == cursor && page.More {
			return fmt.Errorf("the server repeated the cursor %s; the feed does not advance", cursor)
		}
		cursor, more = page.NextAfter, page.More
		if !more || limit > 0 && len(events) >= limit {
			break
		}
	}
	if c.json() {
		if len(raws) == 1 {
			return c.printRaw(raws[0])
		}
		var b bytes.Buffer
		b.WriteString(`{"events":[`)
		for i, ev := range events {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(ev.Raw)
		}
		fmt.Fprintf(&b, `],"next_after":%q,"more":%t}`, cursor, more)
		return c.printRaw(b.Bytes())
	}
	if len(events) == 0 {
		fmt.Fprintln(c.stderr, "No events.")
	}
	c.eventHeader()
	for _, ev := range events {
		c.eventRow(ev)
	}
	if more {
		fmt.Fprintf(c.stderr, "More events are ready: continue with --after %s\n", cursor)
	}
	return nil
}

// followEvents prints every event after after as it comes, until the
// command is interrupted or limit (if not 0) events were printed; then it
// says on stderr where to resume.
func (c *cli) followEvents(cl *client.Client, after string, limit int) error {
	if !c.json() {
		c.eventHeader()
	}
	last, n := after, 0
	err := cl.FollowEvents(c.ctx, "", after, func(ev *client.Event) error {
		if c.json() {
			var b bytes.Buffer
			if err := json.Compact(&b, ev.Raw); err != nil {
				return err
			}
			b.WriteByte('\n')
			if _, err := c.stdout.Write(b.Bytes()); err != nil {
				return err
			}
		} else {
			c.eventRow(ev)
		}
		last, n = ev.ID, n+1
		if limit > 0 && n >= limit {
			return errEnough
		}
		return nil
	})
	resume := "resume with --after " + last
	if last == "" {
		resume = "no event was received: run it again to start from the oldest kept"
	}
	if errors.Is(err, errEnough) || c.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(c.stderr, resume)
		return nil
	}
	if last != "" {
		return fmt.Errorf("%w (%s)", err, resume)
	}
	return err
}

// eventFormat lays out the columns of an event line. The feed is printed
// as it comes, so the widths are fixed rather than fitted.
const eventFormat = "%-19s  %-21s  %-24s  %-7s  %-9s  %-30s  %s\n"

func (c *cli) eventHeader() {
	fmt.Fprintf(c.stdout, eventFormat, "AT", "TYPE", "SECRET", "VERSION", "STATE", "KEY", "ID")
}

func (c *cli) eventRow(ev *client.Event) {
	version := "-"
	if ev.Version != nil {
		version = strconv.Itoa(*ev.Version)
	}
	fmt.Fprintf(c.stdout, eventFormat, c.whenExact(ev.At), cell(ev.Type), cell(deref(ev.Name)), version, cell(deref(ev.State)), cell(deref(ev.KeyID)), cell(ev.ID))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
