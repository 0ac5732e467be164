// Command trivial is the reference function of the cold-start report: a
// handler that does nothing, so that its time to first response under the
// emulator is the emulator's own start plus the runtime's handshake, which
// the report subtracts from each real function's.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (string, error) { return "ok", nil })
}
