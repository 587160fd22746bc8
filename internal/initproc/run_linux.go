package initproc

func run() {}
