using System.Text.Json;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Jobs;

/// <summary>Runs one kind of job. Throws <see cref="BifrostException"/> for failures that have an answer for the client.</summary>
internal interface IJobHandler
{
    string Kind { get; }

    Task<JobOutcome> ExecuteAsync(JobRecord job, CancellationToken cancellationToken);
}

/// <summary>Job kinds and the routes they come from (one kind per inference route).</summary>
internal static class JobKinds
{
    public const string ChatCompletion = "chat_completion";
}

/// <summary>An async chat completion: the same gateway call as the synchronous route, its JSON kept as the result.</summary>
internal sealed class ChatCompletionJobHandler(IBifrostClient gateway) : IJobHandler
{
    public string Kind => JobKinds.ChatCompletion;

    public async Task<JobOutcome> ExecuteAsync(JobRecord job, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.Deserialize(job.Payload.Span, BifrostJson.Context.ChatCompletionRequest)
            ?? throw BifrostException.Gateway(400, "invalid_request_error", "invalid_json", "The stored request is empty.");
        var response = await gateway.ChatCompletionAsync(request, cancellationToken).ConfigureAwait(false);
        return new JobOutcome(200, JsonSerializer.SerializeToUtf8Bytes(response, BifrostJson.Context.ChatCompletionResponse));
    }
}
