using System.Runtime.InteropServices;

namespace Bifrost.Middleware.Jobs;

/// <summary>
/// A job read for an answer to a client (see <see cref="IJobStore.OpenResultAsync"/>): its state, and its result body as a
/// stream, so a large result is copied to the client without being held in memory once per reader. Dispose it when the
/// body was read (a durable store keeps a database connection or reader open until then).
/// </summary>
public sealed class JobResultReader : IAsyncDisposable
{
    private readonly IAsyncDisposable? _owner;

    /// <summary>Creates a reader.</summary>
    /// <param name="job">The job. Its <see cref="JobRecord.Result"/> may be null (the body comes as <paramref name="result"/>), and
    /// its <see cref="JobRecord.Payload"/> may be empty once the job finished.</param>
    /// <param name="result">The result (or error) body, null when the job has none (yet).</param>
    /// <param name="resultLength">The body's length in bytes, when known.</param>
    /// <param name="owner">Disposed with the reader (e.g. the connection the stream reads from); null for none.</param>
    public JobResultReader(JobRecord job, Stream? result, long? resultLength, IAsyncDisposable? owner = null)
    {
        Job = job ?? throw new ArgumentNullException(nameof(job));
        Result = result;
        ResultLength = resultLength;
        _owner = owner;
    }

    /// <summary>The job's state (status, status code, times, owner, kind).</summary>
    public JobRecord Job { get; }

    /// <summary>The result or error body, read once from its start; null when the job has none.</summary>
    public Stream? Result { get; }

    /// <summary>The length of <see cref="Result"/> in bytes, when known.</summary>
    public long? ResultLength { get; }

    /// <summary>A reader over a job read whole (its <see cref="JobRecord.Result"/> in memory), without copying the body.</summary>
    /// <param name="job">The job.</param>
    /// <returns>The reader.</returns>
    public static JobResultReader FromRecord(JobRecord job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Result is not { } body)
        {
            return new JobResultReader(job, null, null);
        }

        var stream = MemoryMarshal.TryGetArray(body, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(body.ToArray(), writable: false);
        return new JobResultReader(job, stream, body.Length);
    }

    /// <summary>Closes the stream and what it reads from.</summary>
    /// <returns>A task that completes when closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Result is not null)
        {
            await Result.DisposeAsync().ConfigureAwait(false);
        }

        if (_owner is not null)
        {
            await _owner.DisposeAsync().ConfigureAwait(false);
        }
    }
}
