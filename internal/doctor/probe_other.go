//go:build !linux

package doctor

const notLinux = "the native backend needs Linux"

func checkUserNS() Item {
	return Item{Name: NameUserNS, Required: true, Detail: notLinux, Fix: "run pybox on Linux, or use --backend wasm"}
}

func checkSeccomp() Item {
	return Item{Name: NameSeccomp, Required: true, Detail: notLinux, Fix: "run pybox on Linux, or use --backend wasm"}
}

func checkLandlock() (Item, int, []string) {
	return Item{Name: NameLandlock, Required: true, Detail: notLinux, Fix: "run pybox on Linux, or use --backend wasm"}, 0, nil
}
