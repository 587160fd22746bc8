package codecache

import (
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	exe := FileID{Dev: 65024, Ino: 9980214, Size: 21381152, Mtime: 1796692605896057815}
	py := FileID{Dev: 1, Ino: 2, Size: 3, Mtime: 0}
	b := Index(exe, "/usr/bin/python3.11", py, "4b1d71da2edfaf77a64177360569635d")
	e, interp, p, key, ok := ParseIndex(b)
	if !ok || e != exe || interp != "/usr/bin/python3.11" || p != py || key != "4b1d71da2edfaf77a64177360569635d" {
		t.Fatalf("ParseIndex(%q) = %+v %q %+v %q %v", b, e, interp, p, key, ok)
	}
	for _, bad := range []string{
		"",
		"PYBOXA1\x001:2:3:4\x00/usr/bin/python3\x001:2:3:4\x00ab",     // no newline
		"PYBOXA2\x001:2:3:4\x00/usr/bin/python3\x001:2:3:4\x00ab\n",   // other magic
		"PYBOXA1\x001:2:3\x00/usr/bin/python3\x001:2:3:4\x00ab\n",     // three numbers
		"PYBOXA1\x001:2:3:4:5\x00/usr/bin/python3\x001:2:3:4\x00ab\n", // five
		"PYBOXA1\x001:2::4\x00/usr/bin/python3\x001:2:3:4\x00ab\n",    // empty number
		"PYBOXA1\x001:2:3:4\x00\x001:2:3:4\x00ab\n",                   // no interpreter
		"PYBOXA1\x001:2:3:4\x00/usr/bin/python3\x001:2:3:4\x00../x\n", // a key that climbs
		"PYBOXA1\x001:2:3:4\x00/usr/bin/python3\x001:2:3:4\x00AB\n",   // upper case
		"PYBOXA1\x001:2:3:4\x00/usr/bin/python3\x001:2:3:4\x00ab\x00x\n",
		"PYBOXA1\x0099999999999999999999:2:3:4\x00/p\x001:2:3:4\x00ab\n", // overflows
		"PYBOXA1\x0001:2:3:4\x00/p\x001:2:3:4\x00ab\n",                   // a leading zero
	} {
		if _, _, _, _, ok := ParseIndex([]byte(bad)); ok {
			t.Errorf("ParseIndex(%q) accepted it", bad)
		}
	}
}

func FuzzParseIndex(f *testing.F) {
	f.Add(Index(FileID{1, 2, 3, 4}, "/usr/bin/python3", FileID{5, 6, 7, 8}, "ab"))
	f.Fuzz(func(t *testing.T, b []byte) {
		exe, interp, py, key, ok := ParseIndex(b)
		if ok && string(Index(exe, interp, py, key)) != string(b) {
			t.Errorf("ParseIndex(%q) accepted what Index does not make", b)
		}
	})
}
