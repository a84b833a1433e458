#!/bin/sh
echo "agent heartbeat"
