//go:build front

package main

import _ "embed"

// The component program and what the front knows about it, made by hack/build.sh for
// linux/amd64 (files named by platform, so that the release build's platforms can build in
// parallel).

//go:embed payload/linux-amd64/kubestrap
var payloadProgram string

//go:embed payload/linux-amd64/manifest.json
var payloadManifestJSON []byte

//go:embed payload/linux-amd64/apiserver-flags.json
var payloadFlags []byte
