global using Bifrost.Middleware.Jobs;
