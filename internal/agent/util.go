package agent

import "os"

func envSet(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}

func removeQuiet(path string) { _ = os.Remove(path) }
