package prime

// Mount is a cgroup or cgroup2 mount, from /proc/self/mountinfo.
type Mount struct {
	// Root is the mount's root within its hierarchy; Point where it is
	// mounted (both unescaped).
	Root, Point string
	// FSType is "cgroup" (v1) or "cgroup2".
	FSType string
	// Options are the mount's options, then its super block's (a v1
	// hierarchy's controllers are among the latter).
	Options []string
}

// Mounts returns the cgroup and cgroup2 mounts in mountinfo's text. It is
// internal/cgroup's parser too.
func Mounts(mountinfo string) []Mount {
	var ms []Mount
	for _, line := range split(mountinfo, '\n') {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		f := split(line, ' ')
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(f) || (f[sep+1] != "cgroup" && f[sep+1] != "cgroup2") {
			continue
		}
		ms = append(ms, Mount{Root: unescape(f[3]), Point: unescape(f[4]), FSType: f[sep+1],
			Options: append(split(f[5], ','), split(f[sep+3], ',')...)})
	}
	return ms
}

func split(s string, sep byte) []string { return splitN(s, sep, -1) }

// splitN is strings.SplitN (this package does not import strings), except
// that runs of spaces count as one separator.
func splitN(s string, sep byte, n int) []string {
	var out []string
	for len(s) > 0 && n != 1 {
		i := 0
		for i < len(s) && s[i] != sep {
			i++
		}
		if i > 0 || sep != ' ' {
			out = append(out, s[:i])
		}
		if i == len(s) {
			return out
		}
		s = s[i+1:]
		n--
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for space and so on).
func unescape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			o := s[i+1 : i+4]
			if o[0] >= '0' && o[0] <= '3' && o[1] >= '0' && o[1] <= '7' && o[2] >= '0' && o[2] <= '7' {
				b = append(b, (o[0]-'0')<<6|(o[1]-'0')<<3|(o[2]-'0'))
				i += 3
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}
