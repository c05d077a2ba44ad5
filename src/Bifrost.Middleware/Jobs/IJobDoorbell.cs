namespace Bifrost.Middleware.Jobs;

/// <summary>
/// Wakes this instance's idle job workers. The gateway rings it after storing a job; a shared store (e.g. one
/// listening to its database's notifications) rings it when another instance stored one. Only a hint: workers also
/// poll the store, so a missed ring delays work by at most <c>Jobs:PollInterval</c> and loses nothing.
/// </summary>
public interface IJobDoorbell
{
    /// <summary>Wakes a waiting worker, if any.</summary>
    void Ring();
}
