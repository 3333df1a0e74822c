package main

import "github.com/kubestrap/kubestrap/internal/bundle"

func main() { bundle.RunAPIServer() }
