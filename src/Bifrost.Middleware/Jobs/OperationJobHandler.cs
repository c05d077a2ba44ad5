using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Jobs;

/// <summary>Runs the async jobs of one inference operation: the stored request through the gateway, the answer stored as JSON.</summary>
internal sealed class OperationJobHandler<TRequest, TResponse, TChunk>(InferenceOperation<TRequest, TResponse, TChunk> operation) : IJobHandler
    where TRequest : class
    where TResponse : class
    where TChunk : class
{
    public string Kind => operation.Name;

    public async Task<JobRunResult> ExecuteAsync(JobExecution execution, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.Deserialize(execution.Job.Payload.Span, operation.RequestInfo)
            ?? throw BifrostErrors.InvalidRequest("invalid_json", "The stored request is empty.");
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, execution.CancellationRequested);
        Governance.UsageSource.Current = new Governance.UsageSource(Governance.UsageSource.Async, execution.Job.Id); // ends with this method
        var response = await operation.RunAsync(execution.Services, request, linked.Token).ConfigureAwait(false);
        if (operation.BeforeStore is { } prepare)
        {
            await prepare(response, linked.Token).ConfigureAwait(false);
        }

        return new JobRunResult(new JobOutcome(200, JsonSerializer.SerializeToUtf8Bytes(response, operation.ResponseInfo)));
    }
}
