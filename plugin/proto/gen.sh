#!/bin/sh
# gen.sh regenerates the Go code for Ferry's wire protocol (ferry/v1/ferry.proto) next to the .proto.
# It is idempotent: running it twice, or on an unchanged .proto, leaves the checked-in files
# byte-identical, so CI can run it and fail on `git diff --exit-code plugin/proto`.
#
# Tools (pinned; the versions are recorded in the generated files' headers):
#   protoc              3.21.12 (Debian 12: apt-get install protobuf-compiler)
#   protoc-gen-go       v1.36.12 (matches google.golang.org/protobuf in go.mod)
#   protoc-gen-go-grpc  v1.6.2
# The two Go plugins are installed with `go install` into $FERRY_TOOLS_BIN (default: the repo's
# .cache/bin, which git ignores), so the ones on your PATH do not matter.
set -eu

PROTOC_WANT="3.21.12"
PROTOC_GEN_GO_VERSION="v1.36.12"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${FERRY_TOOLS_BIN:-"$repo/.cache/bin"}

if ! command -v protoc >/dev/null 2>&1; then
	echo "gen.sh: protoc not found; install it (Debian: apt-get install -y protobuf-compiler)" >&2
	exit 1
fi
have=$(protoc --version | awk '{print $2}')
if [ "$have" != "$PROTOC_WANT" ]; then
	# A different protoc generates the same code but another version line in the headers, which
	# a drift check reports as a change.
	echo "gen.sh: warning: protoc $have, the checked-in code was made with $PROTOC_WANT" >&2
fi

mkdir -p "$bin"
GOBIN="$bin" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$bin" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

cd "$here"
PATH="$bin:$PATH" protoc \
	--proto_path=. \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	ferry/v1/ferry.proto
