using System.Diagnostics;
using System.Globalization;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Diagnostics;

/// <summary>
/// The gateway's spans (ActivitySource <see cref="BifrostTelemetry.Name"/>), after the OpenTelemetry GenAI semantic
/// conventions: one span per gateway operation (<see cref="TelemetryLayer"/>: kind Internal, named
/// <c>{gen_ai.operation.name} {gen_ai.request.model}</c>) and beneath it one span per provider attempt
/// (<see cref="RoutingHandler"/>: kind Client, with the attempt, the fallback index and the provider key's id — never
/// the key); an adapter's HTTP call runs inside its attempt, so the HttpClient span is the attempt's child. Nothing is
/// created (and nothing allocated) when no listener samples the source.
/// </summary>
internal static class GatewayTracing
{
    public const string CaptureContentVariable = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

    // Attributes of the GenAI semantic conventions and of the gateway's own.
    public const string OperationName = "gen_ai.operation.name";
    public const string ProviderName = "gen_ai.provider.name";
    public const string RequestModel = "gen_ai.request.model";
    public const string ResponseModel = "gen_ai.response.model";
    public const string ResponseId = "gen_ai.response.id";
    public const string FinishReasons = "gen_ai.response.finish_reasons";
    public const string InputTokens = "gen_ai.usage.input_tokens";
    public const string OutputTokens = "gen_ai.usage.output_tokens";
    public const string MaxTokens = "gen_ai.request.max_tokens";
    public const string Temperature = "gen_ai.request.temperature";
    public const string TopP = "gen_ai.request.top_p";
    public const string FrequencyPenalty = "gen_ai.request.frequency_penalty";
    public const string PresencePenalty = "gen_ai.request.presence_penalty";
    public const string StopSequences = "gen_ai.request.stop_sequences";
    public const string Seed = "gen_ai.request.seed";
    public const string ChoiceCount = "gen_ai.request.choice.count";
    public const string OutputType = "gen_ai.output.type";
    public const string ErrorType = "error.type";
    public const string Streaming = "bifrost.stream";
    public const string TimeToFirstChunk = "bifrost.time_to_first_chunk";
    public const string Cost = "bifrost.cost";
    public const string Attempt = "bifrost.attempt";
    public const string FallbackIndex = "bifrost.fallback_index";
    public const string ProviderKeyId = "bifrost.provider.key_id";
    public const string Outcome = "bifrost.outcome";
    public const string StatusCode = "bifrost.status_code";
    public const string VirtualKeyId = "bifrost.virtual_key.id";
    public const string JobId = "bifrost.job.id";
    public const string BatchId = "bifrost.batch.id";
    public const string ContentEvent = "gen_ai.client.inference.operation.details";
    public const string InputMessages = "gen_ai.input.messages";
    public const string OutputMessages = "gen_ai.output.messages";
    public const string OutputTruncated = "bifrost.output.truncated";

    private static readonly AsyncLocal<bool> SuppressedFlow = new();

    /// <summary>
    /// True in a flow whose gateway spans are left out (batch lines past <see cref="TelemetryOptions.BatchLineSpans"/>);
    /// such a flow runs under a span that is not recorded, so parent-based samplers drop the HTTP spans beneath it too.
    /// </summary>
    public static bool Suppressed
    {
        get => SuppressedFlow.Value;
        set => SuppressedFlow.Value = value;
    }

    /// <summary>Whether any listener may sample the gateway's spans in this flow (checked per call: listeners come and go).</summary>
    public static bool IsEnabled => BifrostTelemetry.ActivitySource.HasListeners() && !Suppressed;

    /// <summary>The span of one gateway operation, or null when nothing listens.</summary>
    public static Activity? StartOperation(string operation, string? model, bool stream)
    {
        if (!IsEnabled)
        {
            return null;
        }

        var activity = BifrostTelemetry.ActivitySource.StartActivity(model is null ? operation : string.Concat(operation, " ", model), ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(OperationName, operation);
            activity.SetTag(RequestModel, model);
            if (stream)
            {
                activity.SetTag(Streaming, true);
            }

            if (Governance.GovernanceCaller.Current?.KeyId is { } keyId)
            {
                activity.SetTag(VirtualKeyId, keyId);
            }

            if (Governance.UsageSource.Current is { Source: Governance.UsageSource.Async, RequestId: { } jobId })
            {
                activity.SetTag(JobId, jobId);
            }
        }

        return activity;
    }

    /// <summary>
    /// The span of one run of a job (<c>job {kind}</c>, kind Consumer), linked to the span that submitted it (the job's
    /// <see cref="Jobs.JobRecord.TraceParent"/>); the gateway operation it runs is its child. Null when nothing listens.
    /// </summary>
    public static Activity? StartJob(Jobs.JobRecord job)
    {
        if (!IsEnabled)
        {
            return null;
        }

        ActivityLink[]? links = null;
        if (job.TraceParent is { } parent && ActivityContext.TryParse(parent, null, out var submitted))
        {
            links = [new ActivityLink(submitted)];
        }

        var activity = BifrostTelemetry.ActivitySource.StartActivity(ActivityKind.Consumer, parentContext: default, links: links, name: "job " + job.Kind);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(JobId, job.Id);
            activity.SetTag("bifrost.job.kind", job.Kind);
            activity.SetTag("bifrost.job.attempt", job.Attempts);
        }

        return activity;
    }

    /// <summary>The span of one attempt at one provider (a Client span: the call that leaves the process), or null.</summary>
    public static Activity? StartAttempt(string operation, ResolvedModel target, int targetIndex, int attempt, string? keyId)
    {
        if (!IsEnabled)
        {
            return null;
        }

        var activity = BifrostTelemetry.ActivitySource.StartActivity(string.Concat(operation, " ", target.Provider.Name, "/", target.Model), ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(OperationName, operation);
            activity.SetTag(ProviderName, target.Provider.Name);
            activity.SetTag(RequestModel, target.Model);
            activity.SetTag(Attempt, attempt);
            activity.SetTag(FallbackIndex, targetIndex);
            if (keyId is not null)
            {
                activity.SetTag(ProviderKeyId, keyId);
            }
        }

        return activity;
    }

    /// <summary>Ends an attempt's span with its outcome (<c>success</c>, <c>retry</c>, <c>fallback</c>, <c>error</c>).</summary>
    public static void EndAttempt(Activity? activity, string outcome, BifrostException? error)
    {
        if (activity is null)
        {
            return;
        }

        if (activity.IsAllDataRequested)
        {
            activity.SetTag(Outcome, outcome);
            if (error is not null)
            {
                SetError(activity, error);
            }
        }

        activity.Dispose();
    }

    /// <summary>Marks a span failed: <c>error.type</c> (the error's code, else its status), the status code, status Error.</summary>
    public static void SetError(Activity activity, BifrostException error)
    {
        var type = error.Error.Error.Code ?? error.StatusCode.ToString(CultureInfo.InvariantCulture);
        activity.SetTag(ErrorType, type);
        activity.SetTag(StatusCode, error.StatusCode);
        activity.SetStatus(ActivityStatusCode.Error, error.Error.Error.Message);
    }

    /// <summary>The request parameters the conventions name (chat and text completions).</summary>
    public static void TagRequest(Activity activity, object request)
    {
        switch (request)
        {
            case ChatCompletionRequest chat:
                activity.SetTag(MaxTokens, chat.MaxCompletionTokens ?? chat.MaxTokens);
                activity.SetTag(Temperature, chat.Temperature);
                activity.SetTag(TopP, chat.TopP);
                activity.SetTag(FrequencyPenalty, chat.FrequencyPenalty);
                activity.SetTag(PresencePenalty, chat.PresencePenalty);
                activity.SetTag(Seed, chat.Seed);
                if (chat.N is { } n && n != 1)
                {
                    activity.SetTag(ChoiceCount, n);
                }

                if (chat.Stop is { Count: > 0 } stop)
                {
                    activity.SetTag(StopSequences, stop.ToArray());
                }

                activity.SetTag(OutputType, chat.ResponseFormat?.Type is "json_object" or "json_schema" ? "json" : "text");
                break;
            case TextCompletionRequest text:
                activity.SetTag(MaxTokens, text.MaxTokens);
                activity.SetTag(Temperature, text.Temperature);
                activity.SetTag(TopP, text.TopP);
                activity.SetTag(Seed, text.Seed);
                break;
        }
    }

    /// <summary>What the answer says: the provider and model that served it, its id, finish reasons, usage and cost.</summary>
    public static void TagAnswer(Activity activity, object? answer, BifrostExtraFields? served, TokenCounts? usage, string? responseId)
    {
        activity.SetTag(ProviderName, served?.Provider);
        if (served?.ModelRequested is { } model && activity.GetTagItem(RequestModel) is null)
        {
            activity.SetTag(RequestModel, model);
        }

        activity.SetTag(ResponseId, responseId);
        switch (answer)
        {
            case ChatCompletionResponse chat:
                activity.SetTag(ResponseModel, chat.Model);
                activity.SetTag(FinishReasons, FinishReasonsOf(chat.Choices));
                break;
            case TextCompletionResponse text:
                activity.SetTag(ResponseModel, text.Model);
                break;
            case EmbeddingResponse embeddings:
                activity.SetTag(ResponseModel, embeddings.Model);
                break;
        }

        if (usage is { } tokens)
        {
            activity.SetTag(InputTokens, tokens.Input);
            activity.SetTag(OutputTokens, tokens.Output);
        }

        if (served?.Cost is { } cost)
        {
            activity.SetTag(Cost, cost);
        }
    }

    /// <summary>Whether message content goes on spans: the option, or the convention's environment variable.</summary>
    public static bool CaptureContent(TelemetryOptions options) =>
        options.CaptureMessageContent
        || string.Equals(Environment.GetEnvironmentVariable(CaptureContentVariable), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether <see cref="AddContent"/> has something to record for the request (chat).</summary>
    public static bool HasContent(object request) => request is ChatCompletionRequest { Messages: not null };

    /// <summary>
    /// The chat's messages and the answer's choices (a whole answer, or the one a stream assembled to) as an event on the
    /// span; <paramref name="truncated"/> (streams): whether the output was cut at the configured length.
    /// </summary>
    public static void AddContent(Activity activity, object request, object? answer, bool? truncated = null)
    {
        if (request is not ChatCompletionRequest { Messages: { } messages })
        {
            return;
        }

        var tags = new ActivityTagsCollection
        {
            [InputMessages] = JsonSerializer.Serialize(messages, BifrostJson.Context.IListChatCompletionMessage),
        };
        if (answer is ChatCompletionResponse chat)
        {
            tags[OutputMessages] = JsonSerializer.Serialize(chat.Choices, BifrostJson.Context.IListChatChoice);
        }

        if (truncated is { } cut)
        {
            tags[OutputTruncated] = cut;
        }

        activity.AddEvent(new ActivityEvent(ContentEvent, tags: tags));
    }

    private static string[] FinishReasonsOf<TChoice>(IList<TChoice> choices)
        where TChoice : OpenAI.ChatChoiceBase
    {
        var reasons = new List<string>(choices.Count);
        foreach (var choice in choices)
        {
            if (choice.FinishReason is { } reason)
            {
                reasons.Add(reason);
            }
        }

        return [.. reasons];
    }
}

/// <summary>
/// The span of a batch run on the gateway (<c>batch {id}</c>) and how its lines are traced: the first
/// <see cref="TelemetryOptions.BatchLineSpans"/> lines get their operation and attempt spans beneath it; the others run
/// quiet (<see cref="GatewayTracing.Suppressed"/>, under a span that is not recorded) so a 50,000-line batch does not
/// flood the exporter; the batch's span counts every line by outcome and carries an event per failed line, up to
/// <see cref="TelemetryOptions.BatchFailureEvents"/>. A batch run on a provider's own batch API has the same span, marked
/// native (<see cref="StartNative"/>).
/// </summary>
internal sealed class BatchTrace : IDisposable
{
    public const string LineFailedEvent = "bifrost.batch.line.failed";
    public const string StatusEvent = "bifrost.batch.status";
    public const string Native = "bifrost.batch.native";
    public const string ProviderBatchId = "bifrost.batch.provider_batch_id";

    private readonly Activity _activity;
    private readonly TelemetryOptions _options;
    private readonly Lock _events = new();
    private int _lines;
    private int _failureEvents;
    private int _polls;
    private string? _lastStatus;

    private BatchTrace(Activity activity, TelemetryOptions options)
    {
        _activity = activity;
        _options = options;
    }

    /// <summary>The trace of a batch run, or null when nothing listens.</summary>
    public static BatchTrace? Start(string batchId, string endpoint, int lines, TelemetryOptions options)
    {
        if (!GatewayTracing.IsEnabled || BifrostTelemetry.ActivitySource.StartActivity("batch " + batchId, ActivityKind.Internal) is not { } activity)
        {
            return null;
        }

        if (activity.IsAllDataRequested)
        {
            activity.SetTag(GatewayTracing.BatchId, batchId);
            activity.SetTag("bifrost.batch.endpoint", endpoint);
            activity.SetTag("bifrost.batch.lines", lines);
        }

        return new BatchTrace(activity, options);
    }

    /// <summary>Called by each line, in the line's own flow: null when the line is traced, else the quiet scope to dispose when it ends.</summary>
    public IDisposable? EnterLine()
    {
        if (Interlocked.Increment(ref _lines) <= _options.BatchLineSpans)
        {
            return null;
        }

        GatewayTracing.Suppressed = true;
        var quiet = new Activity("bifrost.batch.line"); // from no source: no listener sees it, its children see a parent not recorded
        quiet.SetParentId(_activity.TraceId, _activity.SpanId, ActivityTraceFlags.None);
        return quiet.Start();
    }

    /// <summary>Records a failed line as an event on the batch's span (up to the configured number).</summary>
    public void LineFailed(string customId, int status, string? code)
    {
        if (!_activity.IsAllDataRequested || Interlocked.Increment(ref _failureEvents) > _options.BatchFailureEvents)
        {
            return;
        }

        var tags = new ActivityTagsCollection { ["bifrost.batch.custom_id"] = customId, [GatewayTracing.StatusCode] = status, [GatewayTracing.ErrorType] = code };
        lock (_events)
        {
            _activity.AddEvent(new ActivityEvent(LineFailedEvent, tags: tags));
        }
    }

    /// <summary>
    /// The trace of a batch run on a provider's own batch API (<c>batch {id}</c>, <c>bifrost.batch.native = true</c>, the
    /// provider): its lines are not gateway calls, so the span carries the provider's batch id, each poll counted and each
    /// status change as an event (<see cref="StatusEvent"/>), the counts at the end, and <c>error.type</c> on failure. Null
    /// when nothing listens.
    /// </summary>
    public static BatchTrace? StartNative(string batchId, string endpoint, int lines, string provider, string? providerBatchId, TelemetryOptions options)
    {
        if (Start(batchId, endpoint, lines, options) is not { } trace)
        {
            return null;
        }

        if (trace._activity.IsAllDataRequested)
        {
            trace._activity.SetTag(Native, true);
            trace._activity.SetTag(GatewayTracing.ProviderName, provider);
            trace._activity.SetTag(ProviderBatchId, providerBatchId);
        }

        return trace;
    }

    /// <summary>The provider's batch id, once created.</summary>
    public void ProviderBatchCreated(string providerBatchId)
    {
        if (_activity.IsAllDataRequested)
        {
            _activity.SetTag(ProviderBatchId, providerBatchId);
        }
    }

    /// <summary>One poll of a native batch: counted; a status other than the last one polled is an event with the counts.</summary>
    public void Polled(string status, BatchRequestCounts counts)
    {
        _polls++;
        if (!_activity.IsAllDataRequested || status == _lastStatus)
        {
            return;
        }

        _lastStatus = status;
        _activity.AddEvent(new ActivityEvent(StatusEvent, tags: new ActivityTagsCollection
        {
            ["bifrost.batch.status"] = status,
            ["bifrost.batch.poll"] = _polls,
            ["bifrost.batch.lines.completed"] = counts.Completed,
            ["bifrost.batch.lines.failed"] = counts.Failed,
        }));
    }

    /// <summary>Marks the run failed (<c>error.type</c>: the code, status Error).</summary>
    public void Failed(string code, string? message)
    {
        if (_activity.IsAllDataRequested)
        {
            _activity.SetTag(GatewayTracing.ErrorType, code);
            _activity.SetStatus(ActivityStatusCode.Error, message);
        }
    }

    /// <summary>Marks the run failed with a gateway error (<c>error.type</c>, status code, status Error).</summary>
    public void Failed(BifrostException error)
    {
        if (_activity.IsAllDataRequested)
        {
            GatewayTracing.SetError(_activity, error);
        }
    }

    /// <summary>The run's counts, set before the span ends.</summary>
    public void Finish(int succeeded, int failed, int expired, int cancelled)
    {
        if (_activity.IsAllDataRequested)
        {
            _activity.SetTag("bifrost.batch.lines.succeeded", succeeded);
            _activity.SetTag("bifrost.batch.lines.failed", failed);
            _activity.SetTag("bifrost.batch.lines.expired", expired);
            _activity.SetTag("bifrost.batch.lines.cancelled", cancelled);
            if (_activity.GetTagItem(Native) is null)
            {
                _activity.SetTag("bifrost.batch.lines.traced", Math.Min(Volatile.Read(ref _lines), _options.BatchLineSpans));
            }
            else
            {
                _activity.SetTag("bifrost.batch.polls", _polls);
            }
        }
    }

    public void Dispose() => _activity.Dispose();
}
