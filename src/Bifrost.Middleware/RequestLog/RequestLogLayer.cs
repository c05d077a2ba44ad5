using System.Runtime.CompilerServices;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Governance;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.RequestLog;

/// <summary>
/// Records every call in the request log (<see cref="RequestLogWriter"/>, off the request's path): whole answers and
/// streams (the time to the first chunk; a stream that fails before or after it; one the caller stops reading: 499;
/// with content capture, what the stream said, assembled while it is relayed: <see cref="StreamCapture{TChunk}"/>),
/// with the caller (<see cref="RequestLogCaller"/>, <see cref="GovernanceCaller"/>), how it came
/// (<see cref="UsageSource"/>: sync, stream, async job, batch line), the provider and model that served it, its
/// status and error code, tokens and <c>extra_fields.cost</c>. Placed outside governance (order 350, between plugins
/// and governance) so that calls governance refuses (401/403/402/429) are recorded too. Absent from the pipeline when
/// <c>Bifrost:RequestLog:Enabled</c> is false.
/// </summary>
internal sealed class RequestLogLayer(GatewayHandler inner, RequestLogWriter writer) : DelegatingGatewayHandler(inner)
{
    public const int Order = 350;

    public static GatewayLayer Registration { get; } = new(
        Order,
        "request_log",
        static (services, next) => services.GetRequiredService<RequestLogWriter>() is { Enabled: true } writer ? new RequestLogLayer(next, writer) : next);

    private TimeProvider Time => writer.Time;

    public override async Task<TResponse> SendAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken)
    {
        var call = Start(operation, request, operation.Name, RequestLogEntry.SourceSync);
        TResponse response;
        try
        {
            response = await Inner.SendAsync(operation, request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            call.Fail(ex, cancellationToken);
            writer.Record(call.Entry(Time, null));
            throw;
        }

        call.Extra = operation.ExtraFieldsOf(response);
        call.Usage = operation.UsageOf?.Invoke(response);
        call.Cost = call.Extra?.Cost;
        call.ResponseId = operation.ResponseIdOf?.Invoke(response);
        var content = writer.CaptureContent ? JsonSerializer.Serialize(response, operation.ResponseInfo) : null;
        writer.Record(call.Entry(Time, content));
        return response;
    }

    public override IAsyncEnumerable<TChunk> StreamAsync<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, CancellationToken cancellationToken) =>
        RecordStreamAsync(Start(operation, request, operation.StreamName ?? operation.Name, RequestLogEntry.SourceStream), operation, request, cancellationToken);

    private async IAsyncEnumerable<TChunk> RecordStreamAsync<TRequest, TResponse, TChunk>(Call call, InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        call.Status = 499; // until the stream ends: a stream the caller stops reading stays 499
        var capture = writer.CaptureContent ? operation.NewStreamCapture?.Invoke(writer.MaxStreamContentLength) : null; // none when capture is off
        try
        {
            await using var chunks = Inner.StreamAsync(operation, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await chunks.MoveNextAsync().ConfigureAwait(false))
                    {
                        call.Status = 200;
                        break;
                    }
                }
                catch (Exception ex)
                {
                    call.Fail(ex, cancellationToken);
                    throw;
                }

                var chunk = chunks.Current;
                call.FirstChunk ??= Time.GetElapsedTime(call.Timestamp);
                var extra = operation.ChunkExtraFieldsOf?.Invoke(chunk);
                call.Extra ??= extra;
                if (operation.ChunkUsageOf?.Invoke(chunk) is { } usage)
                {
                    call.Usage = usage;
                    call.Cost = extra?.Cost ?? call.Cost;
                }

                if (call.ResponseId is null && chunk is IOperationAnswer answer)
                {
                    call.ResponseId = answer.Id;
                }

                capture?.Add(chunk);
                yield return chunk;
            }
        }
        finally
        {
            // A stream that failed or was left keeps what was relayed so far, marked incomplete.
            writer.Record(call.Entry(Time, capture?.ToJson(complete: call.Status == 200)));
        }
    }

    private Call Start<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation, TRequest request, string name, string defaultSource)
        where TRequest : class
        where TResponse : class
        where TChunk : class
    {
        var source = UsageSource.Current;
        var caller = RequestLogCaller.Current;
        var key = GovernanceCaller.Current;
        return new Call
        {
            At = Time.GetUtcNow(),
            Timestamp = Time.GetTimestamp(),
            Operation = name,
            Source = source?.Source ?? defaultSource,
            Model = operation.Model(request),
            Owner = caller?.Owner ?? (key is null ? null : GovernanceCaller.OwnerPrefix + key.KeyId),
            VirtualKeyId = key?.KeyId,
            RequestId = caller?.RequestId,
            JobId = source?.Source == UsageSource.Async ? source.RequestId : null,
            BatchId = source?.BatchId,
            CustomId = source?.CustomId,
            RequestContent = writer.CaptureContent ? JsonSerializer.Serialize(request, operation.RequestInfo) : null, // as the caller sent it
        };
    }

    /// <summary>What is known of a call while it runs: a struct, held in the layer's async frame (no object per call).</summary>
    private struct Call
    {
        public Call()
        {
        }

        public DateTimeOffset At { get; init; }

        public long Timestamp { get; init; }

        public required string Operation { get; init; }

        public required string Source { get; init; }

        public string? Model { get; init; }

        public string? Owner { get; init; }

        public string? VirtualKeyId { get; init; }

        public string? RequestId { get; init; }

        public string? JobId { get; init; }

        public string? BatchId { get; init; }

        public string? CustomId { get; init; }

        public string? RequestContent { get; init; }

        public int Status { get; set; } = 200;

        public string? ErrorCode { get; set; }

        public BifrostExtraFields? Extra { get; set; }

        public TokenCounts? Usage { get; set; }

        public double? Cost { get; set; }

        public string? ResponseId { get; set; }

        public TimeSpan? FirstChunk { get; set; }

        public void Fail(Exception ex, CancellationToken cancellationToken)
        {
            switch (ex)
            {
                case BifrostException bifrost:
                    Status = bifrost.StatusCode;
                    ErrorCode = bifrost.Error.Error.Code ?? bifrost.Error.Error.Type;
                    Extra ??= bifrost.Error.ExtraFields;
                    break;
                case OperationCanceledException when cancellationToken.IsCancellationRequested:
                    Status = 499;
                    ErrorCode = "client_closed_request";
                    break;
                default:
                    Status = 500;
                    ErrorCode = "internal_error";
                    break;
            }
        }

        public readonly RequestLogEntry Entry(TimeProvider time, string? responseContent) => new()
        {
            Id = RequestLogIds.New(At),
            Time = At,
            Owner = Owner,
            VirtualKeyId = VirtualKeyId,
            Operation = Operation,
            Source = Source,
            Provider = Extra?.Provider,
            Model = Extra?.ModelRequested ?? Model,
            Status = Status,
            ErrorCode = Status == 499 && ErrorCode is null ? "client_closed_request" : ErrorCode,
            LatencyMs = (long)time.GetElapsedTime(Timestamp).TotalMilliseconds,
            TimeToFirstChunkMs = FirstChunk is { } first ? (long)first.TotalMilliseconds : null,
            InputTokens = Usage?.Input,
            OutputTokens = Usage?.Output,
            CostUsd = Usage is null || Cost is not { } cost || !double.IsFinite(cost) ? null : (decimal)cost,
            JobId = JobId,
            BatchId = BatchId,
            CustomId = CustomId,
            RequestId = RequestId,
            ResponseId = ResponseId,
            RequestContent = RequestContent,
            ResponseContent = responseContent,
        };
    }
}

/// <summary>Ids of request-log entries (the gateway's calls, native batch lines).</summary>
internal static class RequestLogIds
{
    // A per-process random part, drawn once: ids of several instances sharing a store do not collide.
    private static readonly uint ProcessPart = BitConverter.ToUInt32(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
    private static long sequence;

    /// <summary>
    /// <c>req_</c> + 32 hex digits, time-ordered like a version 7 UUID: the call's Unix time in milliseconds (12), this
    /// process's random part (8), a per-process sequence (12); in one allocation and without a random draw per call (a
    /// GUID per call read the OS's random source: a system call on every request).
    /// </summary>
    public static string New(DateTimeOffset at) => string.Create(36, (Ms: at.ToUnixTimeMilliseconds(), Seq: Interlocked.Increment(ref sequence)), static (span, id) =>
    {
        "req_".CopyTo(span);
        ((ulong)id.Ms & 0xFFFF_FFFF_FFFFUL).TryFormat(span.Slice(4, 12), out _, "x12", System.Globalization.CultureInfo.InvariantCulture);
        ProcessPart.TryFormat(span.Slice(16, 8), out _, "x8", System.Globalization.CultureInfo.InvariantCulture);
        ((ulong)id.Seq & 0xFFFF_FFFF_FFFFUL).TryFormat(span.Slice(24, 12), out _, "x12", System.Globalization.CultureInfo.InvariantCulture);
    });
}
