// Package lambdainvoke serves one function over the AWS Lambda Invoke API
// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), so that
// code written against the Lambda API — the AWS SDKs' Invoke, `aws lambda
// invoke`, a loop runner — runs unchanged against a local server, as it does
// against `sam local start-lambda`.
//
// It is an adapter: it knows nothing of what the function does. It takes the
// function as a Function (payload in, result out) and an ErrorFunc that
// turns the function's error into the errorType and errorMessage of a Lambda
// function error. It imports the standard library only.
//
// # What is emulated, on POST /2015-03-31/functions/{FunctionName}/invocations
//
//   - FunctionName: one of Options.Names, alone ("mobius-resolve"), with a
//     qualifier ("mobius-resolve:prod"), as a partial ARN
//     ("123456789012:function:mobius-resolve") or a full one
//     ("arn:aws:lambda:us-east-1:123456789012:function:mobius-resolve[:prod]").
//     The qualifier may also be given as ?Qualifier=; the two must agree
//     (400 InvalidParameterValueException otherwise). Any well-formed
//     qualifier is accepted (there is one version of the code) and echoed in
//     X-Amz-Executed-Version, which is $LATEST without one. Another name is
//     404 ResourceNotFoundException, "Function not found: arn:…". The region
//     and account of an ARN are not checked.
//   - X-Amz-Invocation-Type: RequestResponse (the default) runs the function
//     and answers 200 with its result. A function error is 200 with
//     X-Amz-Function-Error: Unhandled and {"errorType", "errorMessage"}.
//     DryRun checks the name and answers 204 without running anything.
//     Event is refused (see below). Another value is 400 ValidationException.
//   - The payload: at most MaxPayloadBytes (6,291,456 bytes, Lambda's limit
//     for a synchronous invocation), else 413 RequestEntityTooLargeException;
//     it must be JSON, else 400 InvalidRequestContentException (the message
//     says where the JSON breaks and never quotes it). An empty payload is
//     the event {}.
//   - The result: at most MaxPayloadBytes, else the function error
//     Function.ResponseSizeTooLarge, as Lambda answers. A function still
//     running after Options.Timeout is the function error Sandbox.Timedout.
//   - X-Amz-Log-Type: Tail returns X-Amz-Log-Result, the base64 of the last
//     4 KB of the invocation's log: START, the lines the function logged
//     during this call (through a logger built on TeeHandler), END and a
//     REPORT line with the duration. Memory figures are not reported.
//   - Every answer carries x-amzn-RequestId and X-Amz-Request-Id (a new
//     UUID); errors carry x-amzn-ErrorType and a JSON body in Lambda's form.
//
// # What is not
//
//   - Event (asynchronous) invocations are refused with 400
//     InvalidParameterValueException rather than run: the result is the only
//     thing such a function produces, an asynchronous invocation throws it
//     away, and running it anyway would only do the work (and record it)
//     for nobody.
//   - Requests are not authenticated: no SigV4 signature is checked, so any
//     credentials (or none) work. The server is meant for a loopback
//     listener, and the function authorizes each call itself from its
//     payload.
//   - X-Amz-Client-Context, tenancy, durable executions, versions and
//     aliases (beyond echoing the qualifier), concurrency limits and
//     throttling, response streaming and the other Lambda operations are
//     not emulated; another path or method under /2015-03-31/ answers
//     404 or 405 with an error body in Lambda's form.
package lambdainvoke
