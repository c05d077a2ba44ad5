using System.ClientModel;
using System.ClientModel.Primitives;
using System.Globalization;
using System.Text.Json;

namespace Bifrost.Middleware.Client;

/// <summary>
/// One inference route as an async job route: how to send to it (the SDK client's protocol method, so the client's
/// endpoint, credential and pipeline apply) and how to tell its pending shape from its result.
/// </summary>
internal sealed class AsyncRoute(Func<BinaryContent, RequestOptions, Task<ClientResult>> send, Func<JsonElement, bool> isPending)
{
    public const string AsyncHeader = "x-bf-async";
    public const string AsyncIdHeader = "x-bf-async-id";
    public const string ResultTtlHeader = "x-bf-async-job-result-ttl";

    public Func<BinaryContent, RequestOptions, Task<ClientResult>> Send { get; } = send;

    /// <summary>The pending shape of chat completions: <c>choices: []</c>.</summary>
    public static bool HasEmptyArray(JsonElement root, string property) =>
        root.ValueKind == JsonValueKind.Object
        && root.TryGetProperty(property, out var array)
        && array.ValueKind == JsonValueKind.Array
        && array.GetArrayLength() == 0;

    /// <summary>Submits <paramref name="body"/> with <c>x-bf-async: true</c> and returns the job.</summary>
    public async Task<BifrostAsyncJob<T>> SubmitAsync<T>(BinaryData body, BifrostAsyncOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        options ??= new BifrostAsyncOptions();
        options.Validate();
        var request = new RequestOptions { CancellationToken = cancellationToken };
        request.AddHeader(AsyncHeader, "true");
        if (options.ResultTtl is { } ttl)
        {
            request.AddHeader(ResultTtlHeader, ((long)Math.Ceiling(ttl.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
        }

        var response = (await Send(BinaryContent.Create(body), request).ConfigureAwait(false)).GetRawResponse();
        var content = response.Content;
        return new BifrostAsyncJob<T>(ReadId(content), this, options, ReadResult<T>(content), RetryAfter(response, options.TimeProvider));
    }

    /// <summary>Waits for the submission, then for the job's result.</summary>
    public static async Task<T> WaitAsync<T>(Task<BifrostAsyncJob<T>> submission, CancellationToken cancellationToken)
        where T : class
    {
        var job = await submission.ConfigureAwait(false);
        return await job.WaitForResultAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A job handle for an id the caller already has.</summary>
    public BifrostAsyncJob<T> Job<T>(string jobId, BifrostAsyncOptions? options)
        where T : class
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        options ??= new BifrostAsyncOptions();
        options.Validate();
        return new BifrostAsyncJob<T>(jobId, this, options, result: null, retryAfter: null);
    }

    /// <summary>An answer's <c>Retry-After</c> (delta-seconds or an HTTP date), if the gateway sent one.</summary>
    public static TimeSpan? RetryAfter(PipelineResponse response, TimeProvider timeProvider)
    {
        if (!response.Headers.TryGetValue("Retry-After", out var value) || string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
        {
            return null;
        }

        var wait = date - timeProvider.GetUtcNow();
        return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
    }

    /// <summary>
    /// The typed result, or <see langword="null"/> for the pending shape. A gateway that answered at once (one without
    /// async inference) has its answer taken as the result.
    /// </summary>
    public T? ReadResult<T>(BinaryData content)
        where T : class
    {
        using (var document = JsonDocument.Parse(content))
        {
            if (isPending(document.RootElement))
            {
                return null;
            }
        }

        return ModelReaderWriter.Read<T>(content, ModelReaderWriterOptions.Json)
            ?? throw new InvalidOperationException($"The gateway's answer could not be read as {typeof(T).Name}.");
    }

    private static string ReadId(BinaryData content)
    {
        using var document = JsonDocument.Parse(content);
        return document.RootElement.ValueKind == JsonValueKind.Object
            && document.RootElement.TryGetProperty("id", out var id)
            && id.ValueKind == JsonValueKind.String
            && id.GetString() is { Length: > 0 } value
                ? value
                : throw new InvalidOperationException("The gateway's answer to an x-bf-async request has no job id: is it a Bifrost gateway?");
    }

    /// <summary>
    /// A JSON object of <paramref name="head"/>'s properties, then those of <paramref name="options"/> (an SDK options
    /// model written by its own writer) except the names in <paramref name="skip"/>.
    /// </summary>
    public static BinaryData Body(Action<Utf8JsonWriter> head, BinaryData? options, params ReadOnlySpan<string> skip)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            head(writer);
            if (options is not null)
            {
                using var document = JsonDocument.Parse(options);
                foreach (var property in document.RootElement.EnumerateObject())
                {
                    if (!skip.Contains(property.Name))
                    {
                        property.WriteTo(writer);
                    }
                }
            }

            writer.WriteEndObject();
        }

        return new BinaryData(buffer.WrittenMemory);
    }
}
