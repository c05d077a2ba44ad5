namespace Bifrost.Middleware.Files;

/// <summary>
/// The default <see cref="IFileStore"/>: each file is <c>{id}.data</c> plus a small <c>{id}.meta.json</c> in one
/// directory (the <see cref="StoredFile"/> record in snake_case JSON: id, bytes, created_at, filename, purpose, owner). Contents are streamed in and out with a fixed buffer; metadata is written last (atomically, by rename),
/// so a crash mid-upload leaves no visible file.
/// </summary>
public sealed class FileSystemFileStore : IFileStore
{
    private const int BufferSize = 81920;
    private readonly string _directory;
    private readonly TimeProvider _time;

    /// <summary>Creates a store in <paramref name="directory"/> (created when missing).</summary>
    /// <param name="directory">The directory.</param>
    /// <param name="timeProvider">The clock.</param>
    public FileSystemFileStore(string directory, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _directory = Path.GetFullPath(directory);
        _time = timeProvider ?? throw new ArgumentNullException(nameof(timeProvider));
        Directory.CreateDirectory(_directory);
    }

    /// <summary>The directory holding the files.</summary>
    public string DirectoryPath => _directory;

    /// <inheritdoc />
    public async ValueTask<StoredFile> SaveAsync(NewFile file, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(content);
        var dataPath = DataPath(file.Id);
        var tempPath = dataPath + ".uploading";
        long total = 0;
        try
        {
            await using (var target = new FileStream(tempPath, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Options = FileOptions.Asynchronous, BufferSize = 0 }))
            {
                total = await LimitedCopy.CopyAsync(content, target, maxBytes, cancellationToken).ConfigureAwait(false);
                await target.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(tempPath, dataPath, overwrite: true);
        }
        catch
        {
            TryDelete(tempPath);
            throw;
        }

        var stored = new StoredFile
        {
            Id = file.Id,
            Bytes = total,
            CreatedAt = _time.GetUtcNow().ToUnixTimeSeconds(),
            Filename = file.Filename,
            Purpose = file.Purpose,
            Owner = file.Owner,
        };
        try
        {
            await WriteMetadataAsync(stored, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            TryDelete(dataPath); // no metadata, no file: nothing is left behind
            throw;
        }

        return stored;
    }

    /// <inheritdoc />
    public async ValueTask<StoredFile?> GetAsync(string id, CancellationToken cancellationToken)
    {
        if (!IsValidId(id))
        {
            return null;
        }

        var path = MetadataPath(id);
        try
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, FileOptions.Asynchronous);
            return await JsonSerializer.DeserializeAsync(stream, BifrostJson.Context.StoredFile, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async ValueTask<Stream?> OpenReadAsync(string id, CancellationToken cancellationToken)
    {
        if (await GetAsync(id, cancellationToken).ConfigureAwait(false) is null)
        {
            return null;
        }

        try
        {
            return new FileStream(DataPath(id), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        if (!IsValidId(id) || !File.Exists(MetadataPath(id)))
        {
            return ValueTask.FromResult(false);
        }

        TryDelete(MetadataPath(id));
        TryDelete(DataPath(id));
        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StoredFile>> ListAsync(string owner, string? purpose, int limit, string? after, bool ascending, CancellationToken cancellationToken)
    {
        var files = new List<StoredFile>();
        foreach (var path in Directory.EnumerateFiles(_directory, "*.meta.json"))
        {
            var id = Path.GetFileName(path)[..^".meta.json".Length];
            if (await GetAsync(id, cancellationToken).ConfigureAwait(false) is { } file && file.Owner == owner && (purpose is null || file.Purpose == purpose))
            {
                files.Add(file);
            }
        }

        IEnumerable<StoredFile> ordered = ascending
            ? files.OrderBy(f => f.CreatedAt).ThenBy(f => f.Id, StringComparer.Ordinal)
            : files.OrderByDescending(f => f.CreatedAt).ThenByDescending(f => f.Id, StringComparer.Ordinal);
        if (after is not null)
        {
            ordered = ordered.SkipWhile(f => f.Id != after).Skip(1);
        }

        return [.. ordered.Take(limit)];
    }

    /// <inheritdoc />
    public ValueTask<IAppendableFile> OpenAppendAsync(NewFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!IsValidId(file.Id))
        {
            throw new ArgumentException($"Invalid file id '{file.Id}'.", nameof(file));
        }

        var stream = new FileStream(DataPath(file.Id), new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.Read, Options = FileOptions.Asynchronous, BufferSize = 0 });
        try
        {
            TruncatePartialLine(stream);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        return ValueTask.FromResult<IAppendableFile>(new AppendableFile(this, file, stream));
    }

    /// <summary>Cuts anything after the last newline: the half-written line of a crashed writer.</summary>
    private static void TruncatePartialLine(FileStream stream)
    {
        var length = stream.Length;
        if (length == 0)
        {
            return;
        }

        var buffer = new byte[4096];
        var end = length;
        while (end > 0)
        {
            var start = Math.Max(0, end - buffer.Length);
            var count = (int)(end - start);
            stream.Position = start;
            stream.ReadExactly(buffer, 0, count);
            var newline = Array.LastIndexOf(buffer, (byte)'\n', count - 1, count);
            if (newline >= 0)
            {
                stream.SetLength(start + newline + 1);
                stream.Position = stream.Length;
                return;
            }

            end = start;
        }

        stream.SetLength(0);
        stream.Position = 0;
    }

    private async Task WriteMetadataAsync(StoredFile file, CancellationToken cancellationToken)
    {
        var path = MetadataPath(file.Id);
        var temp = path + ".tmp";
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            {
                await JsonSerializer.SerializeAsync(stream, file, BifrostJson.Context.StoredFile, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static bool IsValidId(string id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 && id.All(static c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private string DataPath(string id) => Path.Combine(_directory, id + ".data");

    private string MetadataPath(string id) => Path.Combine(_directory, id + ".meta.json");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class AppendableFile(FileSystemFileStore store, NewFile file, FileStream stream) : IAppendableFile
    {
        private bool _committed;

        public string Id => file.Id;

        public long Length => stream.Length;

        public ValueTask<Stream> OpenReadAsync(CancellationToken cancellationToken) =>
            ValueTask.FromResult<Stream>(new FileStream(store.DataPath(file.Id), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan));

        public async ValueTask AppendLineAsync(ReadOnlyMemory<byte> line, CancellationToken cancellationToken)
        {
            // One write per line straight to the OS (no user-space buffer): a process crash keeps every line written.
            var buffer = LineJoin.Rent(line, out var length);
            try
            {
                await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Several lines in one write.</summary>
        public async ValueTask AppendLinesAsync(IReadOnlyList<ReadOnlyMemory<byte>> lines, CancellationToken cancellationToken)
        {
            var buffer = LineJoin.Rent(lines, out var length);
            try
            {
                await stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public async ValueTask<StoredFile> CommitAsync(CancellationToken cancellationToken)
        {
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            var stored = new StoredFile
            {
                Id = file.Id,
                Bytes = stream.Length,
                CreatedAt = store._time.GetUtcNow().ToUnixTimeSeconds(),
                Filename = file.Filename,
                Purpose = file.Purpose,
                Owner = file.Owner,
            };
            await store.WriteMetadataAsync(stored, cancellationToken).ConfigureAwait(false);
            _committed = true;
            return stored;
        }

        /// <summary>A file closed empty and never committed leaves nothing behind (no error file for a batch without errors).</summary>
        public async ValueTask DisposeAsync()
        {
            var empty = !_committed && stream.CanSeek && stream.Length == 0;
            await stream.DisposeAsync().ConfigureAwait(false);
            if (empty && !File.Exists(store.MetadataPath(file.Id)))
            {
                TryDelete(store.DataPath(file.Id));
            }
        }
    }
}
