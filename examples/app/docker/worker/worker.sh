#!/bin/sh
echo "worker $(cat /app/mode)"
