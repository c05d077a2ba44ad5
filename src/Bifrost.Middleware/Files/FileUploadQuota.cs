namespace Bifrost.Middleware.Files;

/// <summary>
/// One upload of one owner under the storage quota (<c>Jobs:MaxStoredBytesPerOwner</c>) and the file size limits
/// (<c>Files:MaxUploadBytes</c>, <c>Files:MaxBatchFileBytes</c>): refused before the body is read when nothing is left,
/// otherwise the store's size limit is lowered to what is left, so an upload that outgrows it stops while streaming and
/// nothing of it is kept.
/// </summary>
internal sealed class FileUploadQuota
{
    private readonly IFileStore _store;
    private readonly AsyncJobService _jobs;
    private readonly FilesOptions _options;
    private readonly string _owner;
    private readonly long _remaining;

    private FileUploadQuota(IFileStore store, AsyncJobService jobs, FilesOptions options, string owner, long remaining)
    {
        _store = store;
        _jobs = jobs;
        _options = options;
        _owner = owner;
        _remaining = remaining;
    }

    /// <summary>The owner's quota for an upload; a 413 <c>owner_storage_full</c> when nothing is left.</summary>
    public static async Task<FileUploadQuota> ReserveAsync(IFileStore store, AsyncJobService jobs, FilesOptions options, string owner, CancellationToken cancellationToken)
    {
        var remaining = await jobs.RemainingBytesAsync(owner, cancellationToken).ConfigureAwait(false);
        if (remaining <= 0)
        {
            throw jobs.StorageFullForUpload(remaining);
        }

        return new FileUploadQuota(store, jobs, options, owner, remaining);
    }

    /// <summary>Streams the file into the store within the purpose's size limit and what the owner may still store.</summary>
    public async Task<StoredFile> SaveAsync(NewFile file, Stream content, CancellationToken cancellationToken)
    {
        var limit = MaxBytes(file.Purpose);
        try
        {
            return await _store.SaveAsync(file, content, Math.Min(limit, _remaining), cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (ex.StatusCode == 413 && _remaining < limit)
        {
            throw _jobs.StorageFullForUpload(_remaining);
        }
        finally
        {
            _jobs.ForgetFileBytes(_owner);
        }
    }

    private long MaxBytes(string purpose) => purpose == "batch" ? _options.MaxBatchFileBytes : _options.MaxUploadBytes;
}
