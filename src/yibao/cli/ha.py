"""High availability: ``yibao ha demo`` serves the demo city on a
pg_auto_failover cluster started on this machine (``yibao.ops.ha``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from yibao.cli.common import app, fail

ha_app = typer.Typer(help="high availability 高可用 (pg_auto_failover)", no_args_is_help=True)
app.add_typer(ha_app, name="ha")


@ha_app.command("demo")
def ha_demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    root: Annotated[
        Path | None,
        typer.Option(help="folder for the cluster (default: a temporary one, removed on exit)"),
    ] = None,
    replica: Annotated[
        bool,
        typer.Option(help="balance inquiries read from the secondary (YIBAO_READ_REPLICA_URL)"),
    ] = True,
) -> None:
    """Start a monitor, a primary and a synchronous secondary on loopback
    ports, migrate, load the demo city and serve on it; Ctrl-C stops the
    server and the whole cluster."""
    from yibao.cli import server
    from yibao.ops import ha
    from yibao.store import migrate

    why = ha.available()
    if why:
        fail(f"pg_auto_failover is not available 无法启动高可用集群: {why}")
    cluster = ha.HaCluster(root=root, durable=True)
    typer.echo("starting pg_auto_failover: monitor, primary, secondary 正在启动集群 …")
    try:
        cluster.start()
        url = cluster.url()
        os.environ["YIBAO_DATABASE_URL"] = url
        if replica:
            os.environ["YIBAO_READ_REPLICA_URL"] = cluster.node_url(cluster.secondary())
        typer.echo(f"cluster 集群 {cluster.describe()} under {cluster.root}")
        typer.echo(f"  monitor   {cluster.monitor_uri()}")
        typer.echo(f"  YIBAO_DATABASE_URL={url}")
        if replica:
            typer.echo(f"  YIBAO_READ_REPLICA_URL={os.environ['YIBAO_READ_REPLICA_URL']}")
        for node in cluster.nodes:
            typer.echo(
                f"  stop a node to see a failover 停止节点以演示故障切换: "
                f"pg_autoctl stop --pgdata {node.pgdata}  (as postgres, with "
                f"XDG_CONFIG_HOME={cluster.root}/config XDG_DATA_HOME={cluster.root}/state "
                f"XDG_RUNTIME_DIR={cluster.root}/run)"
            )
        migrate.upgrade(url)
        server.demo(as_json=False, host=host, port=port)
        typer.echo("Ctrl-C stops the server and the cluster 按 Ctrl-C 停止服务和集群")
        server.serve(host=host, port=port, workers=1, access_log=True)
    finally:
        typer.echo("stopping the cluster 正在停止集群 …")
        cluster.stop()
