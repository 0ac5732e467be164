package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EnableStream turns on the table's DynamoDB stream with the view type
// (NEW_IMAGE for the event publisher) and returns the stream's ARN.
func EnableStream(ctx context.Context, c *dynamodb.Client, table string, view types.StreamViewType) (string, error) {
	out, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:           aws.String(table),
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: view},
	})
	if err != nil {
		return "", fmt.Errorf("enabling the stream of table %s: %w", table, err)
	}
	if out.TableDescription == nil || aws.ToString(out.TableDescription.LatestStreamArn) == "" {
		return "", fmt.Errorf("table %s has no stream after UpdateTable", table)
	}
	return aws.ToString(out.TableDescription.LatestStreamArn), nil
}

// StreamReader reads a table's DynamoDB stream from the stand-in at
// Endpoint as Lambda's event source mapping does (ListStreams,
// DescribeStream, GetShardIterator, GetRecords), through the DynamoDB
// Streams JSON API, and returns the records as the stand-in sent them: the
// JSON a function triggered by the stream receives, once
// eventSourceARN is added. It keeps its place in each shard, so that each
// Read returns only the records written since the last.
type StreamReader struct {
	Endpoint string
	Table    string
	// OnCall, if set, is told of every call: its action (e.g.
	// "dynamodb:GetRecords") and the stream ARN it names ("" for
	// ListStreams).
	OnCall func(action, resource string)

	client *http.Client
	next   map[string]string // shard ID -> its next iterator
}

// Read returns the records written since the last Read (since the stream
// began, the first time), oldest first, each with its eventSourceARN.
func (r *StreamReader) Read(ctx context.Context) ([]json.RawMessage, error) {
	if r.client == nil {
		r.client = &http.Client{Timeout: 30 * time.Second}
		r.next = map[string]string{}
	}
	var streams struct {
		Streams []struct{ StreamArn string }
	}
	if err := r.call(ctx, "ListStreams", "", map[string]any{"TableName": r.Table}, &streams); err != nil {
		return nil, err
	}
	if len(streams.Streams) == 0 {
		return nil, fmt.Errorf("table %s has no stream", r.Table)
	}
	arn := streams.Streams[len(streams.Streams)-1].StreamArn
	var desc struct {
		StreamDescription struct {
			Shards []struct{ ShardId string }
		}
	}
	if err := r.call(ctx, "DescribeStream", arn, map[string]any{"StreamArn": arn}, &desc); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, sh := range desc.StreamDescription.Shards {
		it, ok := r.next[sh.ShardId]
		if !ok {
			var gi struct{ ShardIterator string }
			if err := r.call(ctx, "GetShardIterator", arn, map[string]any{"StreamArn": arn, "ShardId": sh.ShardId, "ShardIteratorType": "TRIM_HORIZON"}, &gi); err != nil {
				return nil, err
			}
			it = gi.ShardIterator
		}
		for it != "" {
			var page struct {
				Records           []map[string]any
				NextShardIterator string
			}
			if err := r.call(ctx, "GetRecords", arn, map[string]any{"ShardIterator": it, "Limit": 1000}, &page); err != nil {
				return nil, err
			}
			r.next[sh.ShardId] = page.NextShardIterator
			for _, rec := range page.Records {
				rec["eventSourceARN"] = arn
				b, err := json.Marshal(rec)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
			if len(page.Records) == 0 {
				break
			}
			it = page.NextShardIterator
		}
	}
	return out, nil
}

// call makes one DynamoDB Streams request, signed as the SDK signs it
// (the stand-in routes by the signature's service name).
func (r *StreamReader) call(ctx context.Context, op, resource string, in, out any) error {
	if r.OnCall != nil {
		r.OnCall("dynamodb:"+op, resource)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDBStreams_20120810."+op)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret-test"}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "dynamodb", Region, time.Now()); err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("DynamoDB Streams %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DynamoDB Streams %s: HTTP %d: %s", op, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
