//go:build !unix

package wasm

// oNoFollow is not needed where os.Root already refuses symlinks that
// leave the root and Lstat has just said the name is a regular file.
const oNoFollow = 0
