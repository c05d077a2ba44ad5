namespace Bifrost.Middleware.Files;

/// <summary>
/// Where uploaded files (batch inputs) and batch output/error files live. Contents are always streamed:
/// an implementation must never hold a whole file in memory. Like <c>IJobStore</c>, every method returns a
/// <see cref="ValueTask"/> (await each result once).
/// </summary>
public interface IFileStore
{
    /// <summary>Streams <paramref name="content"/> into a new file. Over <paramref name="maxBytes"/>: nothing is kept and a 413 <see cref="BifrostException"/> is thrown.</summary>
    /// <param name="file">Id, name, purpose and owner of the new file.</param>
    /// <param name="content">The content, read once to its end.</param>
    /// <param name="maxBytes">The largest accepted size.</param>
    /// <param name="cancellationToken">Cancels the upload (nothing is kept).</param>
    ValueTask<StoredFile> SaveAsync(NewFile file, Stream content, long maxBytes, CancellationToken cancellationToken);

    /// <summary>A file's metadata, or null when it does not exist.</summary>
    /// <param name="id">The file id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<StoredFile?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Opens a file's content for reading, or null when it does not exist. The caller disposes the stream.</summary>
    /// <param name="id">The file id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<Stream?> OpenReadAsync(string id, CancellationToken cancellationToken);

    /// <summary>Deletes a file; false when it did not exist.</summary>
    /// <param name="id">The file id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>Lists an owner's files, optionally of one purpose, ordered by creation, after the id <paramref name="after"/>.</summary>
    /// <param name="owner">The owner.</param>
    /// <param name="purpose">Only this purpose, or null for all.</param>
    /// <param name="limit">At most this many.</param>
    /// <param name="after">A file id from a previous page, or null.</param>
    /// <param name="ascending">Oldest first when true, newest first otherwise.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyList<StoredFile>> ListAsync(string owner, string? purpose, int limit, string? after, bool ascending, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a file that is written line by line (a batch's output or error file), creating it or reopening the
    /// same id after a restart. A partial last line left by a crash is cut off. The file becomes visible to
    /// <see cref="GetAsync"/> and listings once <see cref="IAppendableFile.CommitAsync"/> was called. Disposed empty and
    /// never committed, it leaves nothing behind (no empty error file for a batch whose lines all succeeded).
    /// </summary>
    /// <param name="file">Id, name, purpose and owner.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IAppendableFile> OpenAppendAsync(NewFile file, CancellationToken cancellationToken);

    /// <summary>
    /// The bytes an owner's files take (every purpose, batch output files included): the figure the per-owner storage
    /// quota (<c>Jobs:MaxStoredBytesPerOwner</c>) adds to the owner's stored jobs.
    /// </summary>
    /// <remarks>The default implementation pages through <see cref="ListAsync"/>; stores should answer it with one query.</remarks>
    /// <param name="owner">The owner.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    async ValueTask<long> GetOwnerBytesAsync(string owner, CancellationToken cancellationToken)
    {
        long total = 0;
        string? after = null;
        while (true)
        {
            var page = await ListAsync(owner, null, 1000, after, ascending: true, cancellationToken).ConfigureAwait(false);
            foreach (var file in page)
            {
                total += file.Bytes;
            }

            if (page.Count < 1000)
            {
                return total;
            }

            after = page[^1].Id;
        }
    }
}

/// <summary>A file written line by line; see <see cref="IFileStore.OpenAppendAsync"/>.</summary>
public interface IAppendableFile : IAsyncDisposable
{
    /// <summary>The file id.</summary>
    string Id { get; }

    /// <summary>Bytes written so far (whole lines only).</summary>
    long Length { get; }

    /// <summary>Reads what the file holds so far (after a restart: the lines written before it).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<Stream> OpenReadAsync(CancellationToken cancellationToken);

    /// <summary>Appends one line (a newline is added) and hands it to the operating system, so a process crash cannot lose it.</summary>
    /// <param name="line">The line, without its newline.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask AppendLineAsync(ReadOnlyMemory<byte> line, CancellationToken cancellationToken);

    /// <summary>
    /// Appends several lines (a newline is added to each), in one write where the store can (e.g. the lines a batch
    /// cancel reports at once). The default appends them one by one.
    /// </summary>
    /// <param name="lines">The lines, without their newlines.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    async ValueTask AppendLinesAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lines);
        foreach (var line in lines)
        {
            await AppendLineAsync(line, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Makes the file visible with its final size.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<StoredFile> CommitAsync(CancellationToken cancellationToken);
}

/// <summary>A file to create.</summary>
public sealed class NewFile
{
    /// <summary>The id, e.g. <c>file-...</c>.</summary>
    public required string Id { get; init; }

    /// <summary>The original file name.</summary>
    public required string Filename { get; init; }

    /// <summary><c>batch</c>, <c>batch_output</c>, <c>user_data</c>, ...</summary>
    public required string Purpose { get; init; }

    /// <summary>Who may read it.</summary>
    public required string Owner { get; init; }
}

/// <summary>
/// A stored file as <see cref="IFileStore"/> keeps it: the store's record, not a wire type (the endpoints answer
/// OpenAI's file object, made from it).
/// </summary>
public sealed class StoredFile
{
    /// <summary>The file id.</summary>
    public required string Id { get; init; }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; init; }

    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; init; }

    /// <summary>The file name.</summary>
    public required string Filename { get; init; }

    /// <summary>The purpose.</summary>
    public required string Purpose { get; init; }

    /// <summary>Unix seconds when the file expires, if it does.</summary>
    public long? ExpiresAt { get; init; }

    /// <summary>Who may read it.</summary>
    public string Owner { get; init; } = string.Empty;
}
