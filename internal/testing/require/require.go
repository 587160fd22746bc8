// Package require has dependency-free test assertions and feature gates,
// in the style of wazero's internal/testing/require.
//
// Assertions stop the test with t.Fatal on failure. Feature gates skip a test
// whose host lacks a kernel feature, unless PYBOX_REQUIRE_ISOLATION=1, in
// which case the missing feature fails the test: CI hosts that must prove
// isolation set it so that nothing is silently skipped.
package require

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Equal fails the test unless expected and actual are deeply equal.
func Equal(t testing.TB, expected, actual any, msgAndArgs ...any) {
	t.Helper()
	if equal(expected, actual) {
		return
	}
	fail(t, fmt.Sprintf("expected %#v, but was %#v", expected, actual), msgAndArgs...)
}

// NotEqual fails the test if expected and actual are deeply equal.
func NotEqual(t testing.TB, expected, actual any, msgAndArgs ...any) {
	t.Helper()
	if !equal(expected, actual) {
		return
	}
	fail(t, fmt.Sprintf("expected to not equal %#v", actual), msgAndArgs...)
}

func equal(expected, actual any) bool {
	if eb, ok := expected.([]byte); ok {
		ab, ok := actual.([]byte)
		return ok && bytes.Equal(eb, ab)
	}
	return reflect.DeepEqual(expected, actual)
}

// NoError fails the test if err is not nil.
func NoError(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		fail(t, fmt.Sprintf("expected no error, but was %v", err), msgAndArgs...)
	}
}

// Error fails the test if err is nil.
func Error(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err == nil {
		fail(t, "expected an error, but was nil", msgAndArgs...)
	}
}

// EqualError fails the test unless err is not nil and its message is
// expected.
func EqualError(t testing.TB, err error, expected string, msgAndArgs ...any) {
	t.Helper()
	if err == nil {
		fail(t, fmt.Sprintf("expected error %q, but was nil", expected), msgAndArgs...)
		return
	}
	if err.Error() != expected {
		fail(t, fmt.Sprintf("expected error %q, but was %q", expected, err.Error()), msgAndArgs...)
	}
}

// ErrorIs fails the test unless errors.Is(err, target).
func ErrorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		fail(t, fmt.Sprintf("expected errors.Is(%v, %v), but it wasn't", err, target), msgAndArgs...)
	}
}

// Contains fails the test unless s contains substr.
func Contains(t testing.TB, s, substr string, msgAndArgs ...any) {
	t.Helper()
	if !strings.Contains(s, substr) {
		fail(t, fmt.Sprintf("expected %q to contain %q", s, substr), msgAndArgs...)
	}
}

// NotContains fails the test if s contains substr.
func NotContains(t testing.TB, s, substr string, msgAndArgs ...any) {
	t.Helper()
	if strings.Contains(s, substr) {
		fail(t, fmt.Sprintf("expected %q to not contain %q", s, substr), msgAndArgs...)
	}
}

// True fails the test unless b is true.
func True(t testing.TB, b bool, msgAndArgs ...any) {
	t.Helper()
	if !b {
		fail(t, "expected true, but was false", msgAndArgs...)
	}
}

// False fails the test unless b is false.
func False(t testing.TB, b bool, msgAndArgs ...any) {
	t.Helper()
	if b {
		fail(t, "expected false, but was true", msgAndArgs...)
	}
}

// Nil fails the test unless v is nil (including a typed nil pointer, map,
// slice, channel or func).
func Nil(t testing.TB, v any, msgAndArgs ...any) {
	t.Helper()
	if !isNil(v) {
		fail(t, fmt.Sprintf("expected nil, but was %#v", v), msgAndArgs...)
	}
}

// NotNil fails the test if v is nil.
func NotNil(t testing.TB, v any, msgAndArgs ...any) {
	t.Helper()
	if isNil(v) {
		fail(t, "expected a value, but was nil", msgAndArgs...)
	}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return rv.IsNil()
	}
	return false
}

// Zero fails the test unless v is the zero value of its type.
func Zero(t testing.TB, v any, msgAndArgs ...any) {
	t.Helper()
	if v != nil && !reflect.ValueOf(v).IsZero() {
		fail(t, fmt.Sprintf("expected zero value, but was %#v", v), msgAndArgs...)
	}
}

// Len fails the test unless v (an array, slice, map, string or channel) has
// length n.
func Len(t testing.TB, v any, n int, msgAndArgs ...any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
		if rv.Len() != n {
			fail(t, fmt.Sprintf("expected length %d, but was %d: %#v", n, rv.Len(), v), msgAndArgs...)
		}
	default:
		fail(t, fmt.Sprintf("cannot take the length of %T", v), msgAndArgs...)
	}
}

// fail stops the test with reason and the optional message: msgAndArgs is
// either empty, one value, or a format string followed by its arguments.
func fail(t testing.TB, reason string, msgAndArgs ...any) {
	t.Helper()
	if msg := message(msgAndArgs...); msg != "" {
		t.Fatalf("%s: %s", msg, reason)
		return
	}
	t.Fatal(reason)
}

func message(msgAndArgs ...any) string {
	switch len(msgAndArgs) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("%v", msgAndArgs[0])
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return fmt.Sprintf("%v", msgAndArgs)
}
