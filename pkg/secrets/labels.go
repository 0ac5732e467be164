package secrets

import (
	"maps"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Labels and dates: metadata to organise secrets by and to plan their
// lifecycle. Neither is part of the digest.

// Limits of labels.
const (
	MaxLabels        = 64
	MaxLabelValueLen = 128 // characters
	// MaxListScan bounds how many name items one filtered list call reads:
	// a filter that matches few secrets of a large project returns a short
	// (even empty) page with a cursor to continue from, never a scan of the
	// whole project in one request.
	MaxListScan = 1000
)

// ValidLabelKey reports whether s is a valid label key: the alphabet of
// value keys, 1-128 characters.
func ValidLabelKey(s string) bool { return ValidKey(s) }

// ValidLabelValue reports whether s is a valid label value: valid UTF-8,
// at most MaxLabelValueLen characters, no control characters at all.
func ValidLabelValue(s string) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= MaxLabelValueLen && !strings.ContainsFunc(s, unicode.IsControl)
}

// ValidateLabels checks a labels object.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return FieldErrorf(Invalid, "labels", "a secret holds at most %d labels, not %d", MaxLabels, len(labels))
	}
	for k, v := range labels {
		if !ValidLabelKey(k) {
			return FieldErrorf(Invalid, "labels", "label key %q must be 1-128 characters of A-Z a-z 0-9 _ -", Shorten(k, 40))
		}
		if !ValidLabelValue(v) {
			return FieldErrorf(Invalid, "labels", "the value of label %q must be at most %d characters, without control characters", k, MaxLabelValueLen)
		}
	}
	return nil
}

// Earliest and latest dates a secret's expires_at and rotate_by may hold.
var (
	minDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// validateDate checks an optional date of field: nil (unchanged), the zero
// time (cleared) or a time from 1970 to 9999. It returns it truncated to
// the millisecond, in UTC.
func validateDate(field string, t *time.Time) (*time.Time, error) {
	if t == nil || t.IsZero() {
		return t, nil
	}
	if t.Before(minDate) || t.After(maxDate) {
		return nil, FieldErrorf(Invalid, field, "%s must be a time from 1970 to 9999", field)
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u, nil
}

// ListQuery selects a page of secrets by name, and by what they hold.
type ListQuery struct {
	Prefix string // names that start with it
	After  string // names strictly after it in byte order
	Limit  int    // page size, 1 to MaxPageSize; the default if zero or less
	// Labels keeps only secrets that carry every one of these labels with
	// exactly these values.
	Labels map[string]string
	// ExpiringBefore and RotateBefore, if set, keep only secrets whose
	// expires_at (rotate_by) is set and before them.
	ExpiringBefore time.Time
	RotateBefore   time.Time
}

// filtered reports whether q filters on more than names.
func (q *ListQuery) filtered() bool {
	return len(q.Labels) > 0 || !q.ExpiringBefore.IsZero() || !q.RotateBefore.IsZero()
}

// matches reports whether sec passes q's filters.
func (q *ListQuery) matches(sec *Secret) bool {
	for k, v := range q.Labels {
		if got, ok := sec.Labels[k]; !ok || got != v {
			return false
		}
	}
	if !q.ExpiringBefore.IsZero() && (sec.ExpiresAt.IsZero() || !sec.ExpiresAt.Before(q.ExpiringBefore)) {
		return false
	}
	if !q.RotateBefore.IsZero() && (sec.RotateBy.IsZero() || !sec.RotateBy.Before(q.RotateBefore)) {
		return false
	}
	return true
}

// validate checks q's filters.
func (q *ListQuery) validate() error {
	if err := checkLimit(q.Limit); err != nil {
		return err
	}
	if len(q.Labels) > MaxLabels {
		return FieldErrorf(Invalid, "label", "filter on at most %d labels", MaxLabels)
	}
	for k, v := range q.Labels {
		if !ValidLabelKey(k) || !ValidLabelValue(v) {
			return FieldErrorf(Invalid, "label", "label filters are key:value, the key 1-128 characters of A-Z a-z 0-9 _ -, the value at most %d characters", MaxLabelValueLen)
		}
	}
	return nil
}

// cloneLabels returns a copy of labels, nil if empty.
func cloneLabels(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	return maps.Clone(labels)
}

// sameLabels reports whether a and b hold the same labels (nil and empty
// alike).
func sameLabels(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}
