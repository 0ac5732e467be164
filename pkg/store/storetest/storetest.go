// Package storetest is the conformance suite of the domain over every store
// driver: Run checks the rules of pkg/secrets (lists, versions, renames,
// deletes and the trash, labels and dates, the change feed, the Sweep, API
// keys, the audit, concurrency, integrity, failures) through a
// secrets.Service on a fresh kv.Driver per case. pkg/kv/kvtest holds the
// driver's own contract; this suite holds what users see.
//
// A bug found on one backend becomes a case here, so every backend is held
// to it.
//
// It is imported from tests only. It imports pkg/secrets, pkg/kv,
// pkg/keys/local, pkg/internal/faults (to fail a driver's calls on
// demand) and the standard library.
package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func WantCode(t testing.TB, what string, err error, want secrets.Code) {
	t.Helper()
	if got := secrets.ErrorCode(err); got != want {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, orNone(want))
	}
}

func orNone(c secrets.Code) string {
	if c == "" {
		return "no error"
	}
	return string(c)
}

// normalize returns a copy of v (a pointer to a domain struct, or a slice or
// map of them) with times in UTC and empty slices and maps as nil, so that
// stores that encode differently compare equal.
func normalize(v any) any {
	return norm(reflect.ValueOf(v)).Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func norm(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(norm(v.Elem()))
		return p
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			if t.IsZero() {
				return reflect.ValueOf(time.Time{})
			}
			return reflect.ValueOf(t.UTC())
		}
		c := reflect.New(v.Type()).Elem()
		for i := 0; i < v.NumField(); i++ {
			c.Field(i).Set(norm(v.Field(i)))
		}
		return c
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(norm(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), norm(it.Value()))
		}
		return c
	}
	return v
}

// WantEqual fails the test unless got and want are equal after normalize.
func WantEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = show(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}

// Parallel runs fn(0..n-1) concurrently and returns each call's error.
func Parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}
